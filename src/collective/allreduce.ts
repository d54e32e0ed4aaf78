import { accumulateChunk, encodeChunk, maxChunkElements, newPlainMessage, readHeader, HEADER_BYTES } from './codec.js';
import {
  CollectiveConfigError,
  CollectiveFailedError,
  CollectiveTimeoutError,
  NonFiniteContributionError,
  TransportClosedError,
} from './errors.js';
import { ReadyBarrier } from './barrier.js';
import { MAC_BYTES, type GroupMac, type RunAuth } from './auth.js';
import { planLayout, type ChunkSpec } from './layout.js';
import { createStepState, missingContributions, type Deferred, type StepState } from './step-state.js';
import {
  parseAllReduceGroup,
  parseAllReduceOptions,
  resolveAlgorithm,
  type AllReduceAlgorithm,
  type AllReduceGroup,
  type AllReduceOptions,
} from './options.js';
import type { Transport, TransportMessage, TransportSubscription } from './transport.js';

/** One step of a bucketed all-reduce (see `AllReduce.allreduceBuckets`). */
export interface AllReduceStep {
  readonly step: number;
  /**
   * Contributes this rank's gradient for bucket `bucket` (length = that bucket's length; read
   * before this returns, so the caller may reuse it) and resolves with the reduced bucket,
   * a view into the step's result. Call once per bucket, in any order.
   */
  reduce(bucket: number, gradient: Float32Array): Promise<Float32Array>;
  /** Resolves with the whole reduced vector once every bucket is reduced on every rank's side. */
  done(): Promise<Float32Array>;
}

export interface StepOptions {
  /** Step number; defaults to the previous step + 1 and must increase. */
  step?: number;
  /** Where the result goes (length = the total of the buckets); a new array when absent. Must not alias an input. */
  out?: Float32Array;
}

/** Traffic counters of this rank (cumulative; message bodies including the 8-byte chunk header). */
export interface AllReduceStats {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  /** Messages ignored: stale steps, duplicates, malformed, or too far ahead to buffer. */
  messagesDropped: number;
  /** Messages dropped because their MAC failed (forged, replayed onto another subject, altered); not in messagesDropped. */
  messagesRejected: number;
}

interface Parsed {
  phase: 'rs' | 'ag' | 'ga';
  step: number;
  shard: number;
  chunk: number;
  data: Uint8Array;
}

/** Future steps whose early messages are kept (a peer is at most one step ahead). */
const MAX_BUFFERED_STEPS = 2;

/**
 * Reduce-scatter then all-gather of a flat Float32Array over a Transport, for one rank of one
 * generation. Rank s owns shard s: it sums the N contributions of each of its chunks in rank
 * order 0..N−1 (float32 accumulation, so the result does not depend on arrival order), divides
 * by N for `mean`, and publishes the result; every rank assembles the whole vector.
 *
 * Subjects: `bnn.<run>.<gen>.rs.<step>.<shard>.<chunk>` and `bnn.<run>.<gen>.ag.<step>.<shard>.<chunk>`;
 * the owner's own contribution and its own result never touch the network.
 * Subscriptions are made at construction; `ready()` is the barrier that makes sure every
 * rank is subscribed before anyone publishes. One step at a time; buckets within a step run
 * concurrently. After any failure the instance is unusable: re-form the group (new generation).
 *
 * With a RunAuth every message this rank sends carries a MAC (auth.ts) and every message it
 * receives is verified before it is parsed, buffered or decoded; one that fails is dropped and
 * counted (`stats.messagesRejected`, and the RunAuth's log). Runs always pass one (ElasticGroup).
 */
export class AllReduce {
  readonly group: AllReduceGroup;
  readonly options: AllReduceOptions;
  /** What `options.algorithm` resolved to for this group's size. */
  readonly algorithm: AllReduceAlgorithm;
  private readonly prefix: string;
  private readonly subs: TransportSubscription[];
  private readonly barrier: ReadyBarrier;
  private isReady = false;
  private chunkElements = 0;
  private current: StepState | null = null;
  private lastStep = -1;
  private readonly buffered = new Map<number, Parsed[]>();
  private failure: Error | null = null;
  private closed = false;
  private workerResidual: Float32Array | null = null;
  private ownerResidual: Float32Array | null = null;
  private readonly pumps: Array<Promise<void>>;
  /** This generation's MAC; null: unauthenticated (benches and tests only). */
  private readonly mac: GroupMac | null;
  /** Bytes after each payload for its MAC. */
  private readonly trailer: number;
  readonly stats: AllReduceStats = {
    messagesSent: 0,
    bytesSent: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    messagesDropped: 0,
    messagesRejected: 0,
  };

  constructor(
    private readonly transport: Transport,
    group: AllReduceGroup,
    options: Partial<AllReduceOptions> = {},
    auth: RunAuth | null = null,
  ) {
    this.group = parseAllReduceGroup(group);
    this.options = parseAllReduceOptions(options);
    this.mac = auth ? auth.forGroup(this.group.runId, this.group.generation) : null;
    this.trailer = this.mac ? MAC_BYTES : 0;
    this.prefix = `bnn.${this.group.runId}.${this.group.generation}`;
    const { rank } = this.group;
    this.algorithm = resolveAlgorithm(this.options.algorithm, this.group.worldSize, this.options.compression);
    this.subs = [
      transport.subscribe(`${this.prefix}.hello`),
      ...(this.algorithm === 'allgather'
        ? [transport.subscribe(`${this.prefix}.ga.*.*.*`)]
        : [transport.subscribe(`${this.prefix}.rs.*.${rank}.*`), transport.subscribe(`${this.prefix}.ag.*.*.*`)]),
    ];
    const { compression, op } = this.options;
    const { algorithm } = this;
    this.barrier = new ReadyBarrier(
      rank,
      this.group.worldSize,
      { messageLimit: this.localMessageLimit(), compression, op, algorithm },
      (hello) => {
        if (this.closed || this.transport.isClosed) return;
        const msg = new Uint8Array(hello.byteLength + this.trailer);
        msg.set(hello);
        this.send(`${this.prefix}.hello`, msg, null);
      },
    );
    this.pumps = this.subs.map((s) => this.pump(s));
  }

  /** Largest message (header + body + MAC) this rank will send or accept, before agreeing with peers. */
  private localMessageLimit(): number {
    const room = this.transport.maxPayload - this.options.headerRoomBytes;
    const limit = this.options.maxMessageBytes > 0 ? Math.min(room, this.options.maxMessageBytes) : room;
    if (limit <= HEADER_BYTES + 4 + this.trailer)
      throw new CollectiveConfigError(
        `max_payload ${this.transport.maxPayload} minus headerRoomBytes ${this.options.headerRoomBytes} leaves no room for a chunk`,
      );
    return limit;
  }

  /** Elements per chunk agreed by the group (the smallest limit of any rank); 0 before `ready()`. */
  get chunkElementCount(): number {
    return this.chunkElements;
  }

  /**
   * Barrier: resolves once every rank of the group has subscribed (see ReadyBarrier) and agrees
   * on the chunk size. Fails with CollectiveTimeoutError naming ranks never heard, or
   * CollectiveConfigError when a rank runs other options.
   */
  async ready(): Promise<void> {
    this.assertUsable();
    if (this.isReady) return;
    await this.transport.flush();
    const limit = await this.barrier.wait(this.options.readyTimeoutMs, () => this.assertUsable());
    this.chunkElements = maxChunkElements(this.options.compression, limit - this.trailer);
    this.isReady = true;
  }

  private onHello(data: Uint8Array): void {
    const outcome = this.barrier.onHello(data);
    if (outcome === 'malformed') this.drop();
    else if (outcome instanceof Error) this.fail(outcome);
  }

  /**
   * All-reduces one whole vector as one bucket; resolves with the result (in `options.out` when
   * given, else a new array). For a vector of buckets see `startBucketedStep` (gradient-buckets.ts).
   */
  allreduce(gradient: Float32Array, options: StepOptions = {}): Promise<Float32Array> {
    const step = this.allreduceBuckets([gradient.length], options);
    return step.reduce(0, gradient).then(() => step.done());
  }

  /**
   * Starts a step over a vector made of consecutive buckets of the given lengths (e.g. one per
   * layer). Each bucket is cut into shards and chunks on its own, so a bucket can be reduced as
   * soon as its gradient is ready (`reduce`), while later buckets are still being computed.
   * The deadline runs from this call. `step` defaults to the previous step + 1 and must increase.
   * For `sign-ef`, the error-feedback residuals are kept per element of the whole vector; they
   * are reset if the total length changes.
   */
  allreduceBuckets(bucketLengths: readonly number[], options: StepOptions = {}): AllReduceStep {
    this.assertUsable();
    if (!this.isReady) throw new CollectiveConfigError('call ready() before the first step');
    if (this.current) throw new CollectiveConfigError(`step ${this.current.step} is still running: one step at a time`);
    if (bucketLengths.length === 0 || bucketLengths.some((l) => !Number.isInteger(l) || l < 0)) {
      throw new CollectiveConfigError(`bucket lengths: expected non-negative integers, got [${bucketLengths.join(', ')}]`);
    }
    const stepNo = options.step ?? this.lastStep + 1;
    if (!Number.isInteger(stepNo) || stepNo <= this.lastStep)
      throw new CollectiveConfigError(`step: expected an integer above the previous step ${this.lastStep}, got ${stepNo}`);
    const { worldSize } = this.group;
    const allgather = this.algorithm === 'allgather';
    // allgather: one shard of every chunk, reduced by every rank
    const layout = planLayout(bucketLengths, allgather ? 1 : worldSize, this.chunkElements);
    if (options.out && options.out.length !== layout.totalLength) {
      throw new CollectiveConfigError(`out: expected ${layout.totalLength} elements, got ${options.out.length}`);
    }
    if (this.options.compression === 'sign-ef' && this.workerResidual?.length !== layout.totalLength) {
      this.workerResidual = new Float32Array(layout.totalLength);
      this.ownerResidual = allgather ? null : new Float32Array(layout.totalLength);
    }
    const state = createStepState(
      stepNo,
      layout,
      allgather ? 0 : this.group.rank,
      worldSize,
      options.out ?? new Float32Array(layout.totalLength),
    );
    this.current = state;
    this.lastStep = stepNo;
    state.timer = setTimeout(() => this.onDeadline(state), this.options.stepDeadlineMs);
    // empty buckets are complete at once
    state.bucketRemaining.forEach((n, b) => {
      if (n === 0) state.bucketDone[b]?.resolve(this.bucketView(state, b));
    });
    if (state.remaining === 0) this.completeStep(state);
    for (const s of [...this.buffered.keys()]) {
      if (s < stepNo) this.buffered.delete(s);
    }
    const early = this.buffered.get(stepNo);
    this.buffered.delete(stepNo);
    if (early) {
      for (const m of early) if (!this.route(m)) this.drop();
    }

    return {
      step: stepNo,
      reduce: (bucket, gradient) => this.submitBucket(state, bucket, gradient),
      done: () => state.done.promise,
    };
  }

  private bucketView(state: StepState, b: number): Float32Array {
    const off = state.layout.bucketOffsets[b] as number;
    return state.out.subarray(off, off + (state.layout.bucketLengths[b] as number));
  }

  private submitBucket(state: StepState, bucket: number, gradient: Float32Array): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    const len = state.layout.bucketLengths[bucket];
    if (len === undefined)
      return Promise.reject(
        new CollectiveConfigError(`bucket ${bucket}: the step has buckets 0..${state.layout.bucketLengths.length - 1}`),
      );
    if (gradient.length !== len)
      return Promise.reject(new CollectiveConfigError(`bucket ${bucket}: expected ${len} elements, got ${gradient.length}`));
    if (state.bucketSubmitted[bucket])
      return Promise.reject(new CollectiveConfigError(`bucket ${bucket} of step ${state.step} was already submitted`));
    state.bucketSubmitted[bucket] = true;
    const { rank } = this.group;
    const codec = this.options.compression;
    const base = state.layout.bucketOffsets[bucket] as number;
    try {
      for (const spec of state.layout.chunksByBucket[bucket] as ChunkSpec[]) {
        const values = gradient.subarray(spec.offset - base, spec.offset - base + spec.length);
        const residual = this.workerResidual ? this.workerResidual.subarray(spec.offset, spec.offset + spec.length) : null;
        const msg = encodeChunk(codec, rank, values, residual, undefined, this.trailer);
        if (this.algorithm === 'allgather') {
          this.send(`${this.prefix}.ga.${state.step}.${rank}.${spec.index}`, msg, state.step);
          this.addContribution(state, spec.index, rank, msg);
        } else if (spec.shard === rank) this.addContribution(state, spec.index, rank, msg);
        else this.send(`${this.prefix}.rs.${state.step}.${spec.shard}.${spec.index}`, msg, state.step);
      }
      this.transport.flushNow?.();
    } catch (err) {
      this.fail(
        err instanceof CollectiveFailedError ? err : new CollectiveFailedError(`step ${state.step}: could not publish`, { cause: err }),
      );
    }
    return (state.bucketDone[bucket] as Deferred<Float32Array>).promise;
  }

  /** Publishes `msg` (whose last `trailer` bytes are room for its MAC, sealed here); `step` null for a hello. */
  private send(subject: string, msg: Uint8Array, step: number | null): void {
    this.mac?.seal(step, subject, msg);
    this.transport.publish(subject, msg);
    this.stats.messagesSent++;
    this.stats.bytesSent += msg.byteLength;
  }

  private drop(): void {
    this.stats.messagesDropped++;
  }

  private async pump(sub: TransportSubscription): Promise<void> {
    try {
      for await (const m of sub) this.onMessage(m);
      if (!this.closed) this.fail(new TransportClosedError(`subscription ${sub.subject} ended`));
    } catch (err) {
      this.fail(
        err instanceof CollectiveFailedError ? err : new TransportClosedError(`subscription ${sub.subject} failed`, { cause: err }),
      );
    }
  }

  private onMessage(m: TransportMessage): void {
    this.stats.messagesReceived++;
    this.stats.bytesReceived += m.data.byteLength;
    if (this.failure) return;
    if (!this.accept(m)) this.drop();
  }

  /** The payload of an authentic message; null (counted) when its MAC fails. Without a MAC, the message. */
  private open(subject: string, step: number | null, data: Uint8Array): Uint8Array | null {
    if (!this.mac) return data;
    const payload = this.mac.open(step, subject, data);
    if (!payload) this.stats.messagesRejected++;
    return payload;
  }

  /**
   * Handles a message now or keeps it for its step (verified first), or rejects it (its MAC
   * failed: counted, not dropped); false when it is to be dropped (malformed, stale, too far ahead).
   */
  private accept(m: TransportMessage): boolean {
    const t = m.subject.split('.');
    if (t.length === 4 && t[3] === 'hello') {
      const hello = this.open(m.subject, null, m.data);
      if (hello) this.onHello(hello);
      return true;
    }
    if (t.length !== 7) return false;
    const phase = t[3];
    const step = Number(t[4]);
    const shard = Number(t[5]);
    const chunk = Number(t[6]);
    if (
      (phase !== 'rs' && phase !== 'ag' && phase !== 'ga') ||
      !Number.isInteger(step) ||
      !Number.isInteger(shard) ||
      !Number.isInteger(chunk)
    )
      return false;
    const cur = this.current;
    const now = cur !== null && step === cur.step;
    // a stale step's message can do nothing: not worth verifying
    if (!now && step <= this.lastStep) return false;
    const data = this.open(m.subject, step, m.data);
    if (!data) return true;
    const parsed: Parsed = { phase, step, shard, chunk, data };
    if (now) return this.route(parsed);
    let list = this.buffered.get(step);
    if (!list) {
      if (this.buffered.size >= MAX_BUFFERED_STEPS) return false;
      list = [];
      this.buffered.set(step, list);
    }
    list.push(parsed);
    return true;
  }

  /** Takes a message of the current step; false when it does not belong there (to be dropped). */
  private route(m: Parsed): boolean {
    const state = this.current;
    if (!state || state.step !== m.step) return false;
    const h = readHeader(m.data);
    const allgather = this.algorithm === 'allgather';
    // a ga subject's shard token is the sender; its chunks are those of the one shard
    const list = state.layout.chunksByShard[m.phase === 'ga' ? 0 : m.shard];
    const spec = list?.[m.chunk];
    if (!h || !spec || h.codec !== this.options.compression || h.count !== spec.length || h.rank >= this.group.worldSize) return false;
    if (allgather !== (m.phase === 'ga')) return false;
    if (m.phase === 'ga') {
      if (h.rank !== m.shard || h.rank === this.group.rank) return false;
      return this.addContribution(state, m.chunk, h.rank, m.data);
    }
    if (m.phase === 'rs') {
      if (m.shard !== this.group.rank || h.rank === this.group.rank) return false;
      return this.addContribution(state, m.chunk, h.rank, m.data);
    }
    if (h.rank !== m.shard || m.shard === this.group.rank) return false;
    const gathered = state.gathered[m.shard] as boolean[];
    if (gathered[m.chunk]) return false;
    accumulateChunk(h.codec, m.data, h.count, state.out.subarray(spec.offset, spec.offset + spec.length), true);
    this.markGathered(state, spec);
    return true;
  }

  /** Records a rank's contribution to an owned chunk (reducing it once all are in); false for a duplicate. */
  private addContribution(state: StepState, chunk: number, rank: number, msg: Uint8Array): boolean {
    const slots = state.contributions[chunk] as Array<Uint8Array | null>;
    if (slots[rank]) return false;
    slots[rank] = msg;
    const count = (state.contributionCount[chunk] as number) + 1;
    state.contributionCount[chunk] = count;
    if (count === this.group.worldSize) this.reduceChunk(state, chunk);
    return true;
  }

  /**
   * Sums the N contributions of an owned chunk in rank order, then publishes the result
   * (reduce-scatter); with allgather every rank does this for every chunk and publishes nothing.
   * A contribution with NaN or ±Inf fails the step naming its sender (the accumulate kernels
   * report it from the same pass). A sum may still overflow to ±Inf: that result goes out as
   * it is, the same on every rank, and the training side tells divergence from there.
   */
  private reduceChunk(state: StepState, chunk: number): void {
    const { rank, worldSize } = this.group;
    const spec = (state.layout.chunksByShard[state.ownedShard] as ChunkSpec[])[chunk] as ChunkSpec;
    const slots = state.contributions[chunk] as Array<Uint8Array | null>;
    const codec = this.options.compression;
    const out = state.out.subarray(spec.offset, spec.offset + spec.length);
    if (this.algorithm === 'allgather') {
      if (!this.sumContributions(state, slots, out)) return;
      state.reduced[chunk] = true;
      this.markGathered(state, spec);
      return;
    }
    // `none` reduces straight into the outgoing message; the others reduce, then encode
    let msg: Uint8Array;
    let acc: Float32Array;
    if (codec === 'none') ({ msg, body: acc } = newPlainMessage(rank, spec.length, this.trailer));
    else {
      acc = out;
      msg = new Uint8Array(0);
    }
    if (!this.sumContributions(state, slots, acc)) return;
    state.reduced[chunk] = true;
    if (codec !== 'none') {
      const residual = this.ownerResidual ? this.ownerResidual.subarray(spec.offset, spec.offset + spec.length) : null;
      // every rank, the owner included, keeps exactly what went on the wire: decode in place
      msg = encodeChunk(codec, rank, acc, residual, acc, this.trailer);
    }
    try {
      if (worldSize > 1) this.send(`${this.prefix}.ag.${state.step}.${rank}.${chunk}`, msg, state.step);
    } catch (err) {
      this.fail(
        err instanceof CollectiveFailedError ? err : new CollectiveFailedError(`step ${state.step}: could not publish`, { cause: err }),
      );
      return;
    }
    if (codec === 'none') out.set(acc);
    this.markGathered(state, spec);
  }

  /** acc = the contributions in `slots` summed in rank order (÷N for `mean`); false, the step failed, when one had NaN or ±Inf. */
  private sumContributions(state: StepState, slots: Array<Uint8Array | null>, acc: Float32Array): boolean {
    const { worldSize } = this.group;
    const codec = this.options.compression;
    const divisor = this.options.op === 'mean' ? worldSize : 1;
    for (let r = 0; r < worldSize; r++) {
      if (accumulateChunk(codec, slots[r] as Uint8Array, acc.length, acc, r === 0, r === worldSize - 1 ? divisor : 1)) {
        this.fail(new NonFiniteContributionError(state.step, r));
        return false;
      }
    }
    slots.fill(null);
    return true;
  }

  private markGathered(state: StepState, spec: ChunkSpec): void {
    (state.gathered[spec.shard] as boolean[])[spec.index] = true;
    const left = (state.bucketRemaining[spec.bucket] as number) - 1;
    state.bucketRemaining[spec.bucket] = left;
    if (left === 0) state.bucketDone[spec.bucket]?.resolve(this.bucketView(state, spec.bucket));
    state.remaining--;
    if (state.remaining === 0) this.completeStep(state);
  }

  private completeStep(state: StepState): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    if (this.current === state) this.current = null;
    state.done.resolve(state.out);
  }

  private onDeadline(state: StepState): void {
    state.timer = null;
    if (this.current !== state) return;
    const missing = missingContributions(state, this.group.rank, this.group.worldSize);
    this.fail(new CollectiveTimeoutError(state.step, this.options.stepDeadlineMs, missing));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.barrier.wake();
    const state = this.current;
    this.current = null;
    this.buffered.clear();
    if (state) {
      if (state.timer) clearTimeout(state.timer);
      state.timer = null;
      for (const d of state.bucketDone) d.reject(err);
      state.done.reject(err);
    }
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new CollectiveFailedError('all-reduce closed');
  }

  /**
   * Stops this rank's subscriptions (the transport stays open: the caller owns it) and fails a
   * running step with CollectiveFailedError. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new CollectiveFailedError('all-reduce closed'));
    for (const s of this.subs) s.stop();
    await Promise.all(this.pumps);
  }

  /**
   * This rank's sign-ef error-feedback state: the worker residual over the whole vector and, for
   * reduce-scatter, the owner residual (zero outside its shards). Null before the first step and
   * for other compressions. The arrays are live: copy them to keep them.
   */
  errorFeedback(): { worker: Float32Array; owner: Float32Array | null } | null {
    return this.workerResidual ? { worker: this.workerResidual, owner: this.ownerResidual } : null;
  }

  /**
   * Restores a saved error-feedback state (a checkpoint's) before the next step, whose vector
   * must have the same length. `owner` is used by reduce-scatter only (absent: zeros).
   */
  restoreErrorFeedback(worker: Float32Array, owner: Float32Array | null): void {
    this.assertUsable();
    if (this.options.compression !== 'sign-ef')
      throw new CollectiveConfigError(`error feedback: the group runs '${this.options.compression}', not sign-ef`);
    if (this.current) throw new CollectiveConfigError('error feedback: restore between steps');
    if (owner && owner.length !== worker.length)
      throw new CollectiveConfigError(`error feedback: owner residual of ${owner.length} elements, worker residual of ${worker.length}`);
    this.workerResidual = Float32Array.from(worker);
    this.ownerResidual = this.algorithm === 'allgather' ? null : owner ? Float32Array.from(owner) : new Float32Array(worker.length);
  }

  /** Subscriptions of this instance still open (0 after `close`). */
  get openSubscriptions(): number {
    return this.subs.filter((s) => !s.stopped).length;
  }
}
