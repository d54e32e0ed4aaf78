/**
 * The training side of the gradient all-reduce: where each parameter sits in the one flat
 * vector (model order, the order every rank agrees on), writing tensors' gradients into it
 * (from the backward pass's hook or after it), and reading the reduced vector back as tensors
 * without copying. src/collective only ever sees the flat bytes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { codecKernels, CollectiveConfigError, gradientVector, type BucketedVector } from '../collective/index.js';
import { describeNonFinite } from './non-finite.js';

/** What the layout needs of a parameter (tfjs Variables qualify). */
export interface FlatParam {
  variable: { name: string; size: number; shape: number[] };
}

export interface FlatLayout<P extends FlatParam = FlatParam> {
  /** Parameters in model order. */
  params: readonly P[];
  /** Start of each parameter in the flat vector. */
  offsets: number[];
  /** Elements of all parameters (metrics follow them). */
  length: number;
  /** Index of each parameter by variable name. */
  index: ReadonlyMap<string, number>;
}

export function flatLayout<P extends FlatParam>(params: readonly P[]): FlatLayout<P> {
  const offsets: number[] = [];
  let length = 0;
  for (const p of params) {
    offsets.push(length);
    length += p.variable.size;
  }
  return { params, offsets, length, index: new Map(params.map((p, i) => [p.variable.name, i])) };
}

/**
 * The bucketed vector of a layout: bucket i is parameter i, then `metrics` one-element buckets.
 * Every parameter must have an element (an empty one would have no bucket).
 */
export function layoutVector(layout: FlatLayout, metrics: number): BucketedVector {
  const empty = layout.params.find((p) => p.variable.size === 0);
  if (empty) throw new CollectiveConfigError(`parameter ${empty.variable.name} has no elements`);
  return gradientVector(
    layout.params.map((p) => p.variable.size),
    metrics,
  );
}

/** What `fillGradients` reads of a gradient (tfjs Tensors qualify). */
export interface GradientData {
  dataSync(): ArrayLike<number>;
}

/**
 * Writes `scale · gradient` of every parameter at its offset in `vec` (a missing gradient is
 * zero): the same values as the JavaScript `out[k] = data[k] * scale` (float64 product rounded
 * to float32), through the native codec kernel when available. The same pass tests every value
 * written against `limit` (what the wire format carries, `wireLimit`; Infinity: finite): a
 * parameter whose gradient has NaN, ±Inf or a value at the limit is written as zeros instead (a
 * rank never sends such values), and the first such one is returned, described
 * (`gradient of dense_1/kernel is NaN (element 17)`); null when every value passed.
 */
export function fillGradients(
  vec: Float32Array,
  params: readonly { variable: { name: string; size: number } }[],
  offsets: readonly number[],
  grads: Readonly<Record<string, GradientData | undefined>>,
  scale: number,
  limit = Infinity,
): string | null {
  const k = codecKernels();
  let problem: string | null = null;
  params.forEach((p, i) => {
    const off = offsets[i] as number;
    const n = p.variable.size;
    const g = grads[p.variable.name];
    if (!g) {
      vec.fill(0, off, off + n);
      return;
    }
    const raw = g.dataSync();
    const data = raw instanceof Float32Array ? raw : Float32Array.from(raw);
    if (data.length !== n) throw new CollectiveConfigError(`gradient of ${p.variable.name}: expected ${n} elements, got ${data.length}`);
    const dst = vec.subarray(off, off + n);
    if (!k.scaleInto(data, dst, scale, limit)) return;
    problem ??= `gradient of ${p.variable.name} ${describeNonFinite(dst, limit)}`;
    dst.fill(0);
  });
  return problem;
}

/**
 * The reduced vector as one tensor per parameter, without copying: each tensor is a view of
 * its slice of `flat` (tfjs' CPU backends keep the array they are given). The tensors alias
 * `flat`, so dispose them before `flat` changes: the trainer applies them and disposes them
 * within the step, and the bucketed all-reduce writes the next step's result into the same
 * buffer only after that. Copying them instead cost a 23 MB allocation and copy per step for
 * the example MLP.
 */
export function gradientViews(params: readonly FlatParam[], offsets: readonly number[], flat: Float32Array): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  params.forEach((p, i) => {
    const off = offsets[i] as number;
    out[p.variable.name] = tf.tensor(flat.subarray(off, off + p.variable.size), p.variable.shape, 'float32');
  });
  return out;
}
