import type { MissingContributions } from './errors.js';
import type { ChunkSpec, StepLayout } from './layout.js';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // a failed step rejects every pending promise; callers may not be awaiting all of them
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Book-keeping of one all-reduce step on one rank. */
export interface StepState {
  step: number;
  /** The shard whose chunks this rank reduces: its rank (reduce-scatter), or 0, the only shard (allgather). */
  ownedShard: number;
  layout: StepLayout;
  out: Float32Array;
  /** Per owned chunk: the encoded contribution of each rank (null until it arrives). */
  contributions: Array<Array<Uint8Array | null>>;
  contributionCount: number[];
  /** Per owned chunk: reduced and published. */
  reduced: boolean[];
  /** gathered[s][c]: the result of chunk c of shard s is in `out`. */
  gathered: boolean[][];
  bucketSubmitted: boolean[];
  /** Chunks of each bucket not gathered yet. */
  bucketRemaining: number[];
  bucketDone: Array<Deferred<Float32Array>>;
  /** Chunks of the step not gathered yet. */
  remaining: number;
  done: Deferred<Float32Array>;
  timer: NodeJS.Timeout | null;
}

export function createStepState(step: number, layout: StepLayout, ownedShard: number, worldSize: number, out: Float32Array): StepState {
  const owned = layout.chunksByShard[ownedShard] as ChunkSpec[];
  return {
    step,
    ownedShard,
    layout,
    out,
    contributions: owned.map(() => new Array<Uint8Array | null>(worldSize).fill(null)),
    contributionCount: owned.map(() => 0),
    reduced: owned.map(() => false),
    gathered: layout.chunksByShard.map((list) => list.map(() => false)),
    bucketSubmitted: layout.bucketLengths.map(() => false),
    bucketRemaining: layout.chunksByBucket.map((list) => list.length),
    bucketDone: layout.bucketLengths.map(() => deferred<Float32Array>()),
    remaining: layout.chunksByShard.reduce((n, list) => n + list.length, 0),
    done: deferred<Float32Array>(),
    timer: null,
  };
}

/** Ranks whose contributions to this rank's unreduced chunks are missing, and shards not fully gathered. */
export function missingContributions(state: StepState, rank: number, worldSize: number): MissingContributions {
  const missingRanks = new Set<number>();
  state.reduced.forEach((done, c) => {
    if (done) return;
    const slots = state.contributions[c] as Array<Uint8Array | null>;
    for (let r = 0; r < worldSize; r++) if (!slots[r]) missingRanks.add(r);
  });
  const missingShards: number[] = [];
  state.gathered.forEach((list, s) => {
    if (s !== rank && s !== state.ownedShard && list.some((g) => !g)) missingShards.push(s);
  });
  return { missingRanks: [...missingRanks].sort((a, b) => a - b), missingShards };
}
