// Where each parameter sits in the one flat gradient vector, in the model's fixed parameter order
// (the order the all-reduce sums and every rank agrees on); filled and read by
// src/collective/gradient-buckets.ts (fillGradients) and gradient-tensors.ts (gradientViews).
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
