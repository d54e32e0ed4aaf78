/**
 * Finding and naming NaN and ±Inf in the training state. The hot paths of the default policy
 * never scan: the loss is one number, the gradient fill of a cluster step and the fused AdamW
 * report non-finite values from passes they make anyway (src/collective/codec-kernels.ts,
 * src/optim/adamw.ts). These helpers run after such a report, to say where; over a checkpoint's
 * tensors before it is written or loaded; and, under `train.onNonFinite: skip`, over a step's
 * reduced gradients before its update (one SIMD scan per tensor, native when the addon is built).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { codecKernels } from '../collective/index.js';

/** What a step with a NaN or ±Inf loss or gradient does (`train.onNonFinite`; absent: fail). */
export type NonFinitePolicy = 'fail' | 'skip';

/** NaN, Inf, -Inf, or the number (4 significant digits). */
export function formatValue(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Inf';
  if (x === -Infinity) return '-Inf';
  return Number(x.toPrecision(4)).toString();
}

/**
 * The first value of `values` that is NaN, ±Inf or (with a finite `limit`) at least `limit` in
 * magnitude, as `is NaN (element 17)` / `is 70000 (element 3; the wire format carries
 * |x| < 65520)`; null when there is none.
 */
export function describeNonFinite(values: Float32Array, limit = Infinity): string | null {
  let at = -1;
  if (limit === Infinity) at = codecKernels().firstNonFinite(values);
  else {
    for (let i = 0; i < values.length && at < 0; i++) if (!(Math.abs(values[i] as number) < limit)) at = i;
  }
  if (at < 0) return null;
  const x = values[at] as number;
  return `is ${formatValue(x)} (element ${at}${Number.isFinite(x) ? `; the wire format carries |x| < ${limit}` : ''})`;
}

/** The first NaN or ±Inf among `grads` (tensors keyed by name): one native scan per tensor. */
export function firstNonFiniteGradient(grads: tf.NamedTensorMap): { name: string; index: number; value: number } | null {
  const k = codecKernels();
  for (const [name, t] of Object.entries(grads)) {
    const data = t.dataSync();
    const values = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    const index = k.firstNonFinite(values);
    if (index >= 0) return { name, index, value: values[index] as number };
  }
  return null;
}
