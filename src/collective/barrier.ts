import { COMPRESSIONS, type Compression } from './compression.js';
import { CollectiveConfigError, CollectiveTimeoutError } from './errors.js';
import type { AllReduceAlgorithm } from './options.js';

/** What a rank announces: the options every rank must share, and its message size limit. */
export interface HelloInfo {
  /** Largest message this rank sends or accepts (max_payload minus header room). */
  messageLimit: number;
  compression: Compression;
  op: 'mean' | 'sum';
  algorithm: AllReduceAlgorithm;
}

/**
 * hello: u16 rank | u32 message limit | u8 compression index | u8 flags (bit 0: op sum, else mean;
 * bit 1: algorithm allgather, else reduce-scatter), little-endian.
 */
const HELLO_BYTES = 8;
const RESEND_MS = 200;

export type HelloOutcome = 'new' | 'known' | 'malformed' | CollectiveConfigError;

/**
 * The ready barrier of a group. Each rank subscribes first, then announces itself and
 * re-announces whenever it hears a rank it had not seen; a rank that subscribed late therefore
 * still hears everyone (the one that heard it answers after it subscribed). A periodic resend
 * covers lost announcements. Ranks with different compression, op or algorithm fail at once.
 */
export class ReadyBarrier {
  private readonly seen = new Map<number, HelloInfo>();
  private waiter: (() => void) | null = null;

  constructor(
    private readonly rank: number,
    private readonly worldSize: number,
    private readonly local: HelloInfo,
    private readonly announce: (msg: Uint8Array) => void,
  ) {
    this.seen.set(rank, local);
  }

  announceSelf(): void {
    const msg = new Uint8Array(HELLO_BYTES);
    const dv = new DataView(msg.buffer);
    dv.setUint16(0, this.rank, true);
    dv.setUint32(2, this.local.messageLimit, true);
    msg[6] = COMPRESSIONS.indexOf(this.local.compression);
    msg[7] = (this.local.op === 'mean' ? 0 : 1) | (this.local.algorithm === 'allgather' ? 2 : 0);
    this.announce(msg);
  }

  onHello(data: Uint8Array): HelloOutcome {
    if (data.byteLength !== HELLO_BYTES) return 'malformed';
    const dv = new DataView(data.buffer, data.byteOffset, HELLO_BYTES);
    const rank = dv.getUint16(0, true);
    if (rank >= this.worldSize || rank === this.rank) return 'malformed';
    if (this.seen.has(rank)) return 'known';
    const compression = COMPRESSIONS[data[6] as number];
    const flags = data[7] as number;
    const op = flags & 1 ? 'sum' : 'mean';
    const algorithm: AllReduceAlgorithm = flags & 2 ? 'allgather' : 'reduce-scatter';
    if (compression !== this.local.compression || op !== this.local.op || algorithm !== this.local.algorithm || flags > 3) {
      return new CollectiveConfigError(
        `rank ${rank} runs compression '${compression ?? `#${data[6]}`}', op '${op}', algorithm '${algorithm}' but rank ${this.rank} runs ` +
          `'${this.local.compression}', '${this.local.op}', '${this.local.algorithm}': every rank of a group must use the same options`,
      );
    }
    this.seen.set(rank, { messageLimit: dv.getUint32(2, true), compression, op, algorithm });
    this.announceSelf();
    this.wake();
    return 'new';
  }

  /** Wakes a pending `wait` (to re-check for failure). */
  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * Resolves with the group's message limit (the smallest announced) once every rank was heard.
   * `check` throws to abort (the group failed); a timeout names the ranks never heard.
   */
  async wait(timeoutMs: number, check: () => void): Promise<number> {
    this.announceSelf();
    const started = Date.now();
    const resend = setInterval(() => this.announceSelf(), RESEND_MS);
    try {
      while (this.seen.size < this.worldSize) {
        check();
        const left = timeoutMs - (Date.now() - started);
        if (left <= 0) {
          const missing: number[] = [];
          for (let r = 0; r < this.worldSize; r++) if (!this.seen.has(r)) missing.push(r);
          throw new CollectiveTimeoutError('ready', timeoutMs, { missingRanks: missing, missingShards: [] });
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, RESEND_MS));
          this.waiter = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } finally {
      clearInterval(resend);
      this.waiter = null;
    }
    return Math.min(...[...this.seen.values()].map((h) => h.messageLimit));
  }
}
