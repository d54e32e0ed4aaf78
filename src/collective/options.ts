import { COMPRESSIONS, type Compression } from './compression.js';
import { CollectiveConfigError } from './errors.js';

/** Who this all-reduce instance is: one rank of one generation of one run. */
export interface AllReduceGroup {
  /** Run id; one NATS subject token (letters, digits, `_`, `-`). */
  runId: string;
  /** Membership generation; a new generation never sees an old one's messages. */
  generation: number;
  /** This worker's rank, 0 ≤ rank < worldSize; rank s owns shard s. */
  rank: number;
  worldSize: number;
}

/**
 * `reduce-scatter`: each rank sends each shard to its owner, the owner sums and sends the result
 * back (two hops; per rank 2(N−1)/N of the vector received). `allgather`: each rank publishes
 * its whole contribution once (the server fans it out) and every rank sums all N itself (one
 * hop; (N−1)× the vector received; with sign-ef only one compression). For N = 2 both move the
 * same bytes; `auto` takes allgather there for the compressed formats (sign-ef: 1.48–1.63 vs
 * 0.99–1.43 GB/s effective at 16 MiB) and reduce-scatter otherwise (fp32: every rank adds the
 * whole vector instead of half of it, 44–60% vs 54–70% of raw pub/sub).
 */
export type AllReduceAlgorithm = 'reduce-scatter' | 'allgather';
export const ALLREDUCE_ALGORITHMS = ['auto', 'reduce-scatter', 'allgather'] as const;

/** The algorithm `auto` stands for in a group of `worldSize`. */
export function resolveAlgorithm(
  algorithm: (typeof ALLREDUCE_ALGORITHMS)[number],
  worldSize: number,
  compression: Compression,
): AllReduceAlgorithm {
  if (algorithm !== 'auto') return algorithm;
  return worldSize <= 2 && compression !== 'none' ? 'allgather' : 'reduce-scatter';
}

export interface AllReduceOptions {
  /** See AllReduceAlgorithm; `auto` (default) picks by world size and compression. */
  algorithm: (typeof ALLREDUCE_ALGORITHMS)[number];
  /** Wire format of both phases (see codec.ts for byte counts). */
  compression: Compression;
  /** `mean` divides the rank-order sum by worldSize before the all-gather; `sum` does not. */
  op: 'mean' | 'sum';
  /** A step still incomplete this long after it began fails with CollectiveTimeoutError. */
  stepDeadlineMs: number;
  /** `ready()` fails with CollectiveTimeoutError after this long. */
  readyTimeoutMs: number;
  /** Bytes left free below the server's max_payload in every message (room for NATS headers). */
  headerRoomBytes: number;
  /** Cap on one message's size below max_payload; 0 for none. Smaller chunks pipeline better. */
  maxMessageBytes: number;
}

export function defaultAllReduceOptions(): AllReduceOptions {
  return {
    compression: 'none',
    algorithm: 'auto',
    op: 'mean',
    stepDeadlineMs: 30_000,
    readyTimeoutMs: 30_000,
    headerRoomBytes: 256,
    maxMessageBytes: 0,
  };
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

function nonNegInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new CollectiveConfigError(`${name}: expected a non-negative integer, got ${String(v)}`);
  return v;
}

/** Validates a group before any I/O. */
export function parseAllReduceGroup(group: AllReduceGroup): AllReduceGroup {
  if (typeof group.runId !== 'string' || !TOKEN.test(group.runId)) {
    throw new CollectiveConfigError(`runId: expected letters, digits, '_' or '-' (one NATS subject token), got '${String(group.runId)}'`);
  }
  const generation = nonNegInt('generation', group.generation);
  const worldSize = nonNegInt('worldSize', group.worldSize);
  if (worldSize < 1 || worldSize > 65535) throw new CollectiveConfigError(`worldSize: expected 1..65535, got ${worldSize}`);
  const rank = nonNegInt('rank', group.rank);
  if (rank >= worldSize) throw new CollectiveConfigError(`rank: expected 0..${worldSize - 1} for worldSize ${worldSize}, got ${rank}`);
  return { runId: group.runId, generation, rank, worldSize };
}

/** Fills defaults and validates before any I/O. */
export function parseAllReduceOptions(partial: Partial<AllReduceOptions> = {}): AllReduceOptions {
  const o = {
    ...defaultAllReduceOptions(),
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
  } as AllReduceOptions;
  if (!COMPRESSIONS.includes(o.compression))
    throw new CollectiveConfigError(`compression: expected one of ${COMPRESSIONS.join(', ')}, got '${String(o.compression)}'`);
  if (!ALLREDUCE_ALGORITHMS.includes(o.algorithm))
    throw new CollectiveConfigError(`algorithm: expected one of ${ALLREDUCE_ALGORITHMS.join(', ')}, got '${String(o.algorithm)}'`);
  if (o.op !== 'mean' && o.op !== 'sum') throw new CollectiveConfigError(`op: expected 'mean' or 'sum', got '${String(o.op)}'`);
  for (const k of ['stepDeadlineMs', 'readyTimeoutMs', 'headerRoomBytes', 'maxMessageBytes'] as const) nonNegInt(k, o[k]);
  if (o.stepDeadlineMs < 1) throw new CollectiveConfigError('stepDeadlineMs: expected at least 1');
  return o;
}
