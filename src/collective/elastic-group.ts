/**
 * One rank's membership in one run's group across generations: the transport connection and
 * the all-reduce of the current generation, re-formed when a newer assignment is offered.
 * Bytes only: the training side (src/train/group-collective.ts) fills and reads the vectors.
 *
 * Errors, as in Horovod's elastic loop: `MembershipChangedError` (a newer generation was
 * offered: join it) and `CollectiveFailedError` (a step could not complete here: `regroup`
 * reports it, and the coordinator evicts whoever missed the deadline or re-forms the same
 * members). Either way the step in flight is abandoned and redone by the new generation.
 */
import { AllReduce } from './allreduce.js';
import { RunAuth, type Rejections } from './auth.js';
import type { Compression } from './compression.js';
import {
  CollectiveFailedError,
  CollectiveTimeoutError,
  MembershipChangedError,
  NonFiniteContributionError,
  RegroupTimeoutError,
  TransportClosedError,
  TransportUnreachableError,
} from './errors.js';
import { startBucketedStep, type BucketedStep, type BucketedVector } from './gradient-buckets.js';
import type { Transport } from './transport.js';

/** This rank's place in one generation of a run's group. */
export interface GroupAssignment {
  /** Run id (one subject token). */
  runId: string;
  rank: number;
  worldSize: number;
  generation: number;
  /** Where the generation's transport is (a NATS url). */
  url: string;
  /** The run's secret (32 bytes, the same in every generation): every message carries a MAC keyed by it (auth.ts). */
  runKey: Uint8Array;
  /** The group was re-formed: every rank takes rank 0's state before the next step. */
  resync: boolean;
}

export interface ElasticGroupOptions {
  compression: Compression;
  /** Opens a transport to `url`; `name` identifies this rank's connection. */
  connect(url: string, name: string): Promise<Transport>;
  /** Connection errors that waiting cannot heal (refused credentials, a failed TLS handshake). */
  isFatal(err: unknown): boolean;
  /** How `url` may be shown (credentials removed). */
  redact(url: string): string;
  /** Connection name prefix. */
  name: string;
  stepDeadlineMs: number;
  /** Keep trying to (re)connect this long before giving up (a restarting server). */
  reconnectTimeoutMs: number;
  /** Wait this long for a newer generation after a failure. */
  regroupTimeoutMs: number;
  /** Rejects when the run must end here (stopped, coordinator lost); never resolves. */
  interrupted: Promise<never>;
  /** Tells the coordinator that a collective of generation `group` failed at `step` (0-based, −1 before the first). */
  reportFailure(err: CollectiveFailedError, group: GroupAssignment, step: number): Promise<void>;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ElasticGroup {
  private current: GroupAssignment;
  private next: GroupAssignment | null = null;
  private readonly waiters = new Set<() => void>();
  private transport: Transport | null = null;
  private allreduce: AllReduce | null = null;
  private lastStep = -1;
  private pastBytes = 0;
  private closed = false;
  private auth: RunAuth;
  /** Exact sums done in this generation: each has its own group (`<run>-sync<k>`), so its own subjects and keys. */
  private syncRounds = 0;

  constructor(
    first: GroupAssignment,
    private readonly o: ElasticGroupOptions,
  ) {
    this.current = first;
    this.auth = new RunAuth(first.runKey);
  }

  get assignment(): GroupAssignment {
    return this.current;
  }

  /** The wire format of the group's gradient all-reduce. */
  get compression(): Compression {
    return this.o.compression;
  }

  /** All-reduce bytes sent plus received, over every generation so far (for progress reports). */
  get bytes(): number {
    const s = this.allreduce?.stats;
    return this.pastBytes + (s ? s.bytesSent + s.bytesReceived : 0);
  }

  /** Messages dropped since the previous call because their MAC failed (every generation, gradient and sync groups). */
  takeRejections(): Rejections {
    return this.auth.takeRejections();
  }

  /** A newer assignment of the same run: the group is being re-formed. Older ones are ignored. */
  offer(a: GroupAssignment): void {
    const latest = this.next ?? this.current;
    if (a.generation <= latest.generation) return;
    this.next = a;
    for (const wake of [...this.waiters]) wake();
  }

  /** Throws MembershipChangedError when a newer generation is waiting. */
  checkMembership(): void {
    if (this.next) throw new MembershipChangedError(this.next.generation);
  }

  /**
   * Joins the current generation: (re)connects if needed and passes the group's ready barrier.
   * Returns whether the group must take rank 0's state first (`resync`).
   */
  async join(): Promise<{ resync: boolean }> {
    this.checkMembership();
    if (!this.transport || this.transport.isClosed) this.transport = await this.connect();
    const a = this.current;
    // one secret per run; a coordinator that handed out another would be a bug, but its key wins
    if (!this.auth.holds(a.runKey)) this.auth = new RunAuth(a.runKey);
    this.syncRounds = 0;
    this.allreduce = new AllReduce(
      this.transport,
      { runId: a.runId, generation: a.generation, rank: a.rank, worldSize: a.worldSize },
      {
        op: 'sum',
        compression: this.o.compression,
        stepDeadlineMs: this.o.stepDeadlineMs,
        readyTimeoutMs: this.o.stepDeadlineMs,
      },
      this.auth,
    );
    await this.race(this.allreduce.ready());
    return { resync: a.resync };
  }

  /**
   * Starts summing `vec` over the group in rank order; `step` is the optimizer step it belongs
   * to (0-based). `submit(b)` sends bucket b as soon as the caller has written it (from inside
   * the backward pass); `finish()` sends the rest and resolves with the sum.
   */
  beginAllreduceSum(vec: BucketedVector, step: number): BucketedStep {
    const ar = this.allreduce;
    if (!ar) throw new CollectiveFailedError('join() the group first');
    this.checkMembership();
    this.lastStep = step;
    const inner = startBucketedStep(ar, vec, { step });
    return {
      submit: (b) => inner.submit(b),
      finish: async () => {
        // Alone, the all-reduce never waits for the network: yield once so the assignment stream
        // (a re-formed group, a STOP) and the rest of the I/O still get their turn.
        if (this.current.worldSize === 1) await new Promise<void>((r) => setImmediate(r));
        this.checkMembership();
        return this.race(inner.finish());
      },
    };
  }

  /**
   * Every rank ends with rank 0's `v`, bit for bit: an uncompressed sum to which the other ranks
   * add −0 (x + −0 = x for every x, +0 and NaN included). Its own group (subjects `<run>-sync<k>`).
   */
  async broadcastFromRank0(v: Float32Array): Promise<Float32Array> {
    return this.exactSum(this.current.rank === 0 ? v : new Float32Array(v.length).fill(-0));
  }

  /** Every rank's `mine` (all of the same length), exactly, on every rank: index r is rank r's. */
  async gatherFromEveryRank(mine: Float32Array): Promise<Float32Array[]> {
    const { rank, worldSize: n } = this.current;
    const v = new Float32Array(n * mine.length).fill(-0);
    v.set(mine, rank * mine.length);
    const sum = await this.exactSum(v);
    return Array.from({ length: n }, (_, r) => sum.subarray(r * mine.length, (r + 1) * mine.length));
  }

  /** This rank's sign-ef error-feedback state in the current generation (see AllReduce.errorFeedback). */
  errorFeedback(): { worker: Float32Array; owner: Float32Array | null } | null {
    return this.allreduce?.errorFeedback() ?? null;
  }

  /** Restores saved sign-ef state into the current generation's all-reduce (after join, before a step). */
  restoreErrorFeedback(worker: Float32Array, owner: Float32Array | null): void {
    if (!this.allreduce) throw new CollectiveFailedError('join() the group first');
    this.allreduce.restoreErrorFeedback(worker, owner);
  }

  /**
   * After a failed step or join: reports a collective failure (unless a newer generation is
   * already known), drops a broken connection, and waits for the next assignment, which becomes
   * current. Throws when interrupted or after `regroupTimeoutMs`.
   */
  async regroup(err: Error): Promise<void> {
    const group = this.current;
    await this.dropAllReduce();
    if (err instanceof TransportClosedError || this.transport?.isClosed) {
      await this.transport?.close().catch(() => undefined);
      this.transport = null;
    }
    if (err instanceof CollectiveFailedError && !this.next) {
      this.o.log(`generation ${group.generation}: ${err.message}; reporting to the coordinator`);
      await this.o.reportFailure(err, group, this.lastStep).catch((e: Error) => this.o.log(`could not report the failure: ${e.message}`));
    }
    if (!this.next) await this.waitForNext(err);
    this.current = this.next!;
    this.next = null;
    this.o.log(`rank ${this.current.rank}/${this.current.worldSize} in generation ${this.current.generation}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.dropAllReduce();
    await this.transport?.close().catch(() => undefined);
    this.transport = null;
  }

  private async waitForNext(after: Error): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RegroupTimeoutError(this.o.regroupTimeoutMs, after)), this.o.regroupTimeoutMs);
    });
    try {
      await this.race(timeout);
    } catch (e) {
      if (!(e instanceof MembershipChangedError)) throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async dropAllReduce(): Promise<void> {
    const ar = this.allreduce;
    this.allreduce = null;
    if (!ar) return;
    this.pastBytes += ar.stats.bytesSent + ar.stats.bytesReceived;
    await ar.close().catch(() => undefined);
  }

  /** Rejects with MembershipChangedError once a newer assignment is pending; `cancel` drops the wait. */
  private changed(): { promise: Promise<never>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<never>((_, reject) => {
      wake = () => reject(new MembershipChangedError(this.next!.generation));
      if (this.next) wake();
      else this.waiters.add(wake);
    });
    promise.catch(() => undefined);
    return { promise, cancel: () => this.waiters.delete(wake) };
  }

  private async race<T>(p: Promise<T>): Promise<T> {
    const c = this.changed();
    try {
      return await Promise.race([p, c.promise, this.o.interrupted]);
    } finally {
      c.cancel();
    }
  }

  private async connect(): Promise<Transport> {
    const started = Date.now();
    const url = this.current.url;
    for (let attempt = 0; ; attempt++) {
      try {
        const transport = await this.race(this.o.connect(url, `${this.o.name}-g${this.current.generation}`));
        // which server of a seed list: after a server was lost, this shows where the rank went
        if (transport.server !== undefined) this.o.log(`connected to NATS ${transport.server} for generation ${this.current.generation}`);
        return transport;
      } catch (err) {
        if (err instanceof MembershipChangedError || this.o.isFatal(err) || this.closed) throw err;
        // The url may carry credentials (handed out by the coordinator): never show them.
        if (Date.now() - started > this.o.reconnectTimeoutMs)
          throw new TransportUnreachableError(this.o.redact(url), this.o.reconnectTimeoutMs, { cause: err });
        if (attempt === 0) this.o.log(`${this.o.redact(url)} unreachable (${(err as Error).message}); retrying`);
        await this.race(sleep(250));
      }
    }
  }

  /**
   * An uncompressed rank-order sum of `v` in a sync group of its own (not the gradient group):
   * the k-th of this generation is `<run>-sync<k>` on every rank (every rank makes the same
   * calls in the same order), so no message of one can pass for another's, hellos included.
   */
  private async exactSum(v: Float32Array): Promise<Float32Array> {
    if (!this.transport) throw new CollectiveFailedError('join() the group first');
    const a = this.current;
    const sync = new AllReduce(
      this.transport,
      { runId: `${a.runId}-sync${this.syncRounds++}`, generation: a.generation, rank: a.rank, worldSize: a.worldSize },
      {
        op: 'sum',
        compression: 'none',
        stepDeadlineMs: this.o.stepDeadlineMs,
        readyTimeoutMs: this.o.stepDeadlineMs,
      },
      this.auth,
    );
    try {
      await this.race(sync.ready());
      return await this.race(sync.allreduce(v));
    } finally {
      await sync.close().catch(() => undefined);
    }
  }
}

/**
 * Ranks a failed collective blames (the coordinator evicts them): those a timed-out step heard
 * nothing from, or the sender of NaN or ±Inf values.
 */
export function missingRanksOf(err: CollectiveFailedError): number[] {
  if (err instanceof CollectiveTimeoutError) return err.missingRanks;
  if (err instanceof NonFiniteContributionError) return [err.rank];
  return [];
}
