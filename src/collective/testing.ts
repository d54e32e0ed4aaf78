/**
 * Helpers shared by the collective tests and the all-reduce bench: deterministic gradients,
 * the rank-order reference sum every all-reduce result is checked against, and the options of
 * an elastic group over an in-process loopback hub.
 */
import type { Compression } from './compression.js';
import type { ElasticGroupOptions } from './elastic-group.js';
import type { LoopbackHub } from './transport.js';

/** Deterministic pseudo-random floats in [-scale, scale) (xorshift32 per seed). */
export function randomGradient(length: number, seed: number, scale = 1): Float32Array {
  let x = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = ((x / 0x100000000) * 2 - 1) * scale;
  }
  return out;
}

/** Σ inputs[r] in rank order 0..N−1 with float32 accumulation, then ÷N for `mean`. */
export function rankOrderReduce(inputs: readonly Float32Array[], op: 'mean' | 'sum' = 'mean'): Float32Array {
  const first = inputs[0];
  if (!first) throw new RangeError('no inputs');
  const acc = Float32Array.from(first);
  for (let r = 1; r < inputs.length; r++) {
    const v = inputs[r] as Float32Array;
    for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (v[i] as number);
  }
  if (op === 'mean' && inputs.length > 1) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) / inputs.length;
  return acc;
}

/** Index of the first element whose bits differ, or -1 when equal bit for bit. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Options of an ElasticGroup in an in-process test over `hub`: no failure is fatal, nothing interrupts it, no logging. */
export function loopbackGroupOptions(hub: LoopbackHub, name: string, compression: Compression = 'none'): ElasticGroupOptions {
  return {
    compression,
    connect: async () => hub.connect(),
    isFatal: () => false,
    redact: (u) => u,
    name,
    stepDeadlineMs: 10_000,
    reconnectTimeoutMs: 1000,
    regroupTimeoutMs: 10_000,
    interrupted: new Promise<never>(() => undefined),
    reportFailure: async () => undefined,
    log: () => undefined,
  };
}
