// Gradients ↔ one flat Float32Array, in the model's fixed parameter order (the order the
// all-reduce sums and every rank agrees on).
import * as tf from '@tensorflow/tfjs-core';
import type { Param } from '../src/bnn/layers.js';

export interface FlatLayout {
  /** Parameters in model order. */
  params: readonly Param[];
  /** Start of each parameter in the flat vector. */
  offsets: number[];
  /** Total elements. */
  length: number;
}

export function flatLayout(params: readonly Param[]): FlatLayout {
  const offsets: number[] = [];
  let length = 0;
  for (const p of params) {
    offsets.push(length);
    length += p.variable.size;
  }
  return { params, offsets, length };
}

/** Writes `scale · grad` of every parameter into `out` (a missing gradient is zero). Reads outside tf.tidy. */
export function flattenScaled(layout: FlatLayout, grads: tf.NamedTensorMap, scale: number, out: Float32Array): void {
  layout.params.forEach((p, i) => {
    const off = layout.offsets[i]!;
    const g = grads[p.variable.name];
    if (!g) {
      out.fill(0, off, off + p.variable.size);
      return;
    }
    const data = g.dataSync() as Float32Array;
    if (scale === 1) out.set(data, off);
    else for (let k = 0; k < data.length; k++) out[off + k] = data[k]! * scale;
  });
}

/** Tensors by variable name over slices of `flat` (copied); the caller disposes them. */
export function unflatten(layout: FlatLayout, flat: Float32Array): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  layout.params.forEach((p, i) => {
    const off = layout.offsets[i]!;
    out[p.variable.name] = tf.tensor(flat.slice(off, off + p.variable.size), p.variable.shape, 'float32');
  });
  return out;
}
