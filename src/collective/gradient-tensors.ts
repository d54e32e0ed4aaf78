/**
 * The reduced gradient vector as one tensor per parameter, without copying: each tensor is a
 * view of its slice of `flat` (tfjs' CPU backends keep the array they are given). The
 * tensors alias `flat`, so dispose them before `flat` changes: the trainer applies them and
 * disposes them within the step, and the bucketed all-reduce writes the next step's result
 * into the same buffer only after that. Copying them instead cost a 23 MB allocation and copy
 * per step for the example MLP.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface ShapedParam {
  variable: { name: string; size: number; shape: number[] };
}

export function gradientViews(params: readonly ShapedParam[], offsets: readonly number[], flat: Float32Array): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  params.forEach((p, i) => {
    const off = offsets[i] as number;
    out[p.variable.name] = tf.tensor(flat.subarray(off, off + p.variable.size), p.variable.shape, 'float32');
  });
  return out;
}
