import type { Store, StoreDb } from './db.js';
import { isBusy, StoreBusyError, storeErrorFrom } from './errors.js';

export interface WriteQueueOptions {
  /** How long one attempt waits for the lock; short, since the caller (a training step) waits too. */
  attemptTimeoutMs: number;
  /** Delay before the first retry after a locked attempt; doubled after each, up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Gets one line when writes start waiting for a lock, and one when they are written after it. */
  notice: (line: string) => void;
  /** What the queued rows are, for those lines: `epoch metrics`. */
  what: string;
  now: () => number;
}

export function defaultWriteQueueOptions(): WriteQueueOptions {
  return { attemptTimeoutMs: 50, backoffMs: 250, maxBackoffMs: 5000, notice: () => undefined, what: 'rows', now: Date.now };
}

/**
 * Store writes that wait out another process's lock without holding up their caller. Each
 * write is tried at once with a short busy timeout; while the store is locked, writes are kept
 * in order and tried again by `poll()` (call it often: it is free until a retry is due) after
 * a delay that doubles up to `maxBackoffMs`. `drain()` writes what is left, waiting up to the
 * store's own busy timeout, and throws StoreBusyError when the lock outlasts it. Any other
 * failure (disk full, corrupt or read-only file) is thrown as its store error, by that call
 * and every later one: the queue is broken, and nothing queued is silently dropped.
 */
export class StoreWriteQueue {
  private readonly o: WriteQueueOptions;
  private readonly pending: ((db: StoreDb) => void)[] = [];
  private delayMs: number;
  private nextTryMs = 0;
  /** When the current lock was first met; null while writes go through. */
  private lockedSinceMs: number | null = null;
  private broken: unknown = null;

  constructor(
    private readonly store: Store,
    options: Partial<WriteQueueOptions> = {},
  ) {
    this.o = { ...defaultWriteQueueOptions(), ...options };
    this.delayMs = this.o.backoffMs;
  }

  /** Writes not yet in the store. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues a write, then tries the queue if a retry is due (at once when the store is free). */
  push(write: (db: StoreDb) => void): void {
    this.throwIfBroken();
    this.pending.push(write);
    this.poll();
  }

  /** Tries the queued writes if there are any and a retry is due; true when none is left. */
  poll(): boolean {
    this.throwIfBroken();
    if (this.pending.length === 0) return true;
    if (this.o.now() < this.nextTryMs) return false;
    return this.flush(this.o.now() + this.o.attemptTimeoutMs);
  }

  /**
   * Writes everything queued, waiting up to the store's busy timeout for the lock. Throws
   * StoreBusyError, whose message ends with `hint` (what is lost, what to do), when it is
   * still held then; the writes stay queued.
   */
  drain(hint?: string): void {
    this.throwIfBroken();
    if (this.pending.length === 0) return;
    const waitMs = this.store.busyTimeoutMs;
    if (this.flush(this.o.now() + waitMs)) return;
    const left = `${this.pending.length} queued write(s) of ${this.o.what} are not in it`;
    throw new StoreBusyError(this.store.path, waitMs, `${left}${hint ? `; ${hint}` : ''}`);
  }

  private flush(deadlineMs: number): boolean {
    const { sqlite } = this.store;
    try {
      while (this.pending.length > 0) {
        sqlite.pragma(`busy_timeout = ${Math.max(0, Math.ceil(deadlineMs - this.o.now()))}`);
        try {
          this.pending[0]!(this.store.db);
        } catch (err) {
          if (!isBusy(err)) {
            this.broken = storeErrorFrom(this.store.path, err, { waitedMs: this.store.busyTimeoutMs, busyHint: this.store.busyHint });
            throw this.broken;
          }
          this.backOff();
          return false;
        }
        this.pending.shift();
      }
    } finally {
      if (sqlite.open) sqlite.pragma(`busy_timeout = ${this.store.busyTimeoutMs}`);
    }
    this.resumed();
    return true;
  }

  private backOff(): void {
    const now = this.o.now();
    if (this.lockedSinceMs === null) {
      this.lockedSinceMs = now;
      this.o.notice(
        `bnn: warning: ${this.store.path} is locked by another process; keeping ${this.o.what} in memory and retrying with backoff`,
      );
    }
    this.nextTryMs = now + this.delayMs;
    this.delayMs = Math.min(this.o.maxBackoffMs, this.delayMs * 2);
  }

  private resumed(): void {
    if (this.lockedSinceMs === null) return;
    const seconds = (this.o.now() - this.lockedSinceMs) / 1000;
    this.o.notice(`bnn: ${this.store.path} is free again after ${seconds.toFixed(1)} s; the ${this.o.what} kept meanwhile are written`);
    this.lockedSinceMs = null;
    this.delayMs = this.o.backoffMs;
    this.nextTryMs = 0;
  }

  private throwIfBroken(): void {
    if (this.broken !== null) throw this.broken;
  }
}
