// One worker's membership in one run across generations: the NATS connection and the
// all-reduce group of the current generation, re-formed when the coordinator says so.
//
// Errors, as in Horovod's elastic loop: `MembershipChangedError` (the coordinator re-formed the
// group: join the new generation) and `CollectiveFailedError` (a step could not complete here:
// tell the coordinator, which evicts whoever missed the deadline or re-forms the same members,
// then join the new generation). Either way the step in flight changed no weights and is redone.
import {
  AllReduce, bucketPlanOf, startBucketedStep, type BucketedStep, CollectiveFailedError, CollectiveTimeoutError, connectNatsTransport, MembershipChangedError, NatsAuthError, redactNatsUrl,
  TransportClosedError, type Compression, type Transport,
} from '../src/collective/index.js';
import type { Assignment } from '../src/rpc/index.js';
import type { NatsTransportOptions } from '../src/collective/nats-transport.js';
import { WorkerError } from './errors.js';

/** Who this rank is in the current generation. */
export interface GroupView {
  rank: number;
  worldSize: number;
  generation: number;
}

export interface GroupSessionOptions {
  /** Overrides the NATS url of the assignments. */
  natsUrl?: string;
  /** Passed to every NATS connection (credentials, TLS). */
  nats?: Partial<NatsTransportOptions>;
  /** NATS connection name prefix. */
  name: string;
  stepDeadlineMs: number;
  /** Keep trying to (re)connect to NATS this long before giving up (a restarting server). */
  reconnectTimeoutMs: number;
  /** Wait this long for the coordinator to re-form the group after a failure. */
  regroupTimeoutMs: number;
  /** Rejects when the run must end here (stopped, coordinator lost); never resolves. */
  interrupted: Promise<never>;
  /** Tells the coordinator a collective of generation `group` failed. */
  reportFailure(err: CollectiveFailedError, group: GroupView, step: number): Promise<void>;
  log(line: string): void;
}

/** Thrown when NATS cannot be reached again within `reconnectTimeoutMs`. */
export class NatsUnreachableError extends WorkerError {
  constructor(url: string, ms: number, options: { cause?: unknown } = {}) {
    super(`NATS at ${url} unreachable for ${ms} ms`, options);
    this.name = 'NatsUnreachableError';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class GroupSession {
  private current: Assignment;
  private next: Assignment | null = null;
  private readonly waiters = new Set<() => void>();
  private transport: Transport | null = null;
  private allreduce: AllReduce | null = null;
  private lastStep = -1;
  private pastBytes = 0;
  private closed = false;

  constructor(first: Assignment, private readonly o: GroupSessionOptions) {
    this.current = first;
  }

  get assignment(): Assignment {
    return this.current;
  }

  get group(): GroupView {
    return { rank: this.current.rank, worldSize: this.current.world_size, generation: this.current.generation };
  }

  /** All-reduce bytes sent plus received, over every generation so far (for progress reports). */
  get bytes(): number {
    const s = this.allreduce?.stats;
    return this.pastBytes + (s ? s.bytesSent + s.bytesReceived : 0);
  }

  private async dropAllReduce(): Promise<void> {
    const ar = this.allreduce;
    this.allreduce = null;
    if (!ar) return;
    this.pastBytes += ar.stats.bytesSent + ar.stats.bytesReceived;
    await ar.close().catch(() => undefined);
  }

  /** A newer assignment of the same run arrived: the group is being re-formed. */
  offer(a: Assignment): void {
    const latest = this.next ?? this.current;
    if (a.generation <= latest.generation) return;
    this.next = a;
    for (const wake of [...this.waiters]) wake();
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

  private url(): string {
    return this.o.natsUrl ?? this.current.nats_url;
  }

  private async connect(): Promise<Transport> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.race(connectNatsTransport({ ...this.o.nats, servers: this.url(), name: `${this.o.name}-g${this.current.generation}`, connectTimeoutMs: 2000 }));
      } catch (err) {
        // Refused credentials or a failed TLS handshake do not heal by waiting.
        if (err instanceof MembershipChangedError || err instanceof NatsAuthError || this.closed) throw err;
        // The url may carry credentials (handed out by the coordinator): never show them.
        if (Date.now() - started > this.o.reconnectTimeoutMs) throw new NatsUnreachableError(redactNatsUrl(this.url()), this.o.reconnectTimeoutMs, { cause: err });
        if (attempt === 0) this.o.log(`NATS ${redactNatsUrl(this.url())} unreachable (${(err as Error).message}); retrying`);
        await this.race(sleep(250));
      }
    }
  }

  /**
   * Joins the current generation: (re)connects to NATS if needed and passes the group's ready
   * barrier. Returns whether the group must take rank 0's state first (`resync`).
   */
  async join(): Promise<{ resync: boolean }> {
    if (this.next) throw new MembershipChangedError(this.next.generation);
    if (!this.transport || this.transport.isClosed) this.transport = await this.connect();
    const a = this.current;
    this.allreduce = new AllReduce(this.transport, { runId: a.run_id, generation: a.generation, rank: a.rank, worldSize: a.world_size }, {
      op: 'sum', compression: (a.compression || 'none') as Compression, stepDeadlineMs: this.o.stepDeadlineMs, readyTimeoutMs: this.o.stepDeadlineMs,
    });
    await this.race(this.allreduce.ready());
    return { resync: a.resync };
  }

  /**
   * Starts summing `v` (a `gradientVector`) over the group in rank order; `step` is the optimizer
   * step it belongs to (0-based). `submit(b)` sends bucket b as soon as the caller has written it
   * (from inside the backward pass); `finish()` sends the rest and resolves with the sum.
   */
  beginAllreduceSum(v: Float32Array, step: number): BucketedStep {
    const ar = this.allreduce;
    if (!ar) throw new CollectiveFailedError('join() the group first');
    if (this.next) throw new MembershipChangedError(this.next.generation);
    const plan = bucketPlanOf(v);
    if (!plan) throw new CollectiveFailedError('beginAllreduceSum: expected a vector made by gradientVector()');
    this.lastStep = step;
    const inner = startBucketedStep(ar, v, plan, { step });
    return {
      submit: (b) => inner.submit(b),
      finish: async () => {
        // Alone, the all-reduce never waits for the network: yield once so the assignment stream
        // (a re-formed group, a STOP) and the rest of the I/O still get their turn.
        if (this.current.world_size === 1) await new Promise<void>((r) => setImmediate(r));
        if (this.next) throw new MembershipChangedError(this.next.generation);
        return this.race(inner.finish());
      },
    };
  }

  /**
   * Every rank ends with rank 0's `v`, bit for bit: an uncompressed sum to which the other ranks
   * add −0 (x + −0 = x for every x, +0 and NaN included). Its own group (subjects `<run>-sync`).
   */
  async broadcastFromRank0(v: Float32Array): Promise<Float32Array> {
    return this.exactSum(this.current.rank === 0 ? v : new Float32Array(v.length).fill(-0));
  }

  /**
   * Every rank's `mine` (all of the same length), exactly, on every rank: index r is rank r's.
   * The same uncompressed sum with −0 in every slot but one's own.
   */
  async gatherFromEveryRank(mine: Float32Array): Promise<Float32Array[]> {
    const { rank, world_size: n } = this.current;
    const v = new Float32Array(n * mine.length).fill(-0);
    v.set(mine, rank * mine.length);
    const sum = await this.exactSum(v);
    return Array.from({ length: n }, (_, r) => sum.subarray(r * mine.length, (r + 1) * mine.length));
  }

  /** This rank's sign-ef error-feedback state in the current generation (see AllReduce.errorFeedback). */
  errorFeedback(): { worker: Float32Array; owner: Float32Array | null } | null {
    return this.allreduce?.errorFeedback() ?? null;
  }

  /** Restores a checkpoint's sign-ef state into the current generation's all-reduce (after join). */
  restoreErrorFeedback(worker: Float32Array, owner: Float32Array | null): void {
    if (!this.allreduce) throw new CollectiveFailedError('join() the group first');
    this.allreduce.restoreErrorFeedback(worker, owner);
  }

  /** An uncompressed rank-order sum of `v` in the run's sync group (not the gradient group). */
  private async exactSum(v: Float32Array): Promise<Float32Array> {
    if (!this.transport) throw new CollectiveFailedError('join() the group first');
    const a = this.current;
    const sync = new AllReduce(this.transport, { runId: `${a.run_id}-sync`, generation: a.generation, rank: a.rank, worldSize: a.world_size }, {
      op: 'sum', compression: 'none', stepDeadlineMs: this.o.stepDeadlineMs, readyTimeoutMs: this.o.stepDeadlineMs,
    });
    try {
      await this.race(sync.ready());
      return await this.race(sync.allreduce(v));
    } finally {
      await sync.close().catch(() => undefined);
    }
  }

  /**
   * After a failed step or join: reports a collective failure to the coordinator (unless a new
   * generation is already known), drops a broken NATS connection, and waits for the next
   * assignment, which becomes current. Throws when interrupted or after `regroupTimeoutMs`.
   */
  async regroup(err: Error): Promise<void> {
    const group = this.group;
    await this.dropAllReduce();
    if (err instanceof TransportClosedError || this.transport?.isClosed) {
      await this.transport?.close().catch(() => undefined);
      this.transport = null;
    }
    if (err instanceof CollectiveFailedError && !this.next) {
      this.o.log(`generation ${group.generation}: ${err.message}; reporting to the coordinator`);
      await this.o.reportFailure(err, group, this.lastStep).catch((e: Error) => this.o.log(`could not report the failure: ${e.message}`));
    }
    if (!this.next) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WorkerError(`the coordinator did not re-form the group within ${this.o.regroupTimeoutMs} ms after: ${err.message}`)), this.o.regroupTimeoutMs);
      });
      try {
        await this.race(timeout);
      } catch (e) {
        if (!(e instanceof MembershipChangedError)) throw e;
      } finally {
        clearTimeout(timer);
      }
    }
    this.current = this.next!;
    this.next = null;
    this.o.log(`rank ${this.current.rank}/${this.current.world_size} in generation ${this.current.generation}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.dropAllReduce();
    await this.transport?.close().catch(() => undefined);
    this.transport = null;
  }
}

/** Errors after which the group re-forms and the step is redone (anything else ends the run here). */
export function isRegroupable(err: unknown): err is Error {
  return err instanceof MembershipChangedError || err instanceof CollectiveFailedError;
}

/** Ranks a timed-out collective heard nothing from (the coordinator evicts them). */
export function missingRanksOf(err: CollectiveFailedError): number[] {
  return err instanceof CollectiveTimeoutError ? err.missingRanks : [];
}
