import { Rng } from '../util/rng.js';
import { DataOptionError } from './errors.js';
import type { Split } from './types.js';

function checkFraction(fraction: number): void {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction <= 0 || fraction > 1) {
    throw new DataOptionError('fraction', `subset fraction must be a number in (0, 1], got ${JSON.stringify(fraction)}`);
  }
}

/**
 * Indices (ascending) of a stratified subset: for each class c with count_c samples,
 * round(fraction·count_c) of them, chosen uniformly from `seed`. Ascending order keeps
 * the original sample order, so the result does not depend on class interleaving.
 */
export function stratifiedSubsetIndices(labels: Uint8Array, fraction: number, seed: number): Uint32Array {
  checkFraction(fraction);
  const byClass: number[][] = Array.from({ length: 256 }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const chosen: number[] = [];
  for (let c = 0; c < 256; c++) {
    const members = byClass[c]!;
    const keep = Math.round(fraction * members.length);
    if (keep === 0) continue;
    // One stream per class: a class's choice does not depend on the other classes' counts.
    const rng = Rng.derive(seed, 'stratified-subset', c);
    // Partial Fisher–Yates: the first `keep` slots become a uniform sample.
    for (let i = 0; i < keep; i++) {
      const j = i + rng.int(members.length - i);
      const t = members[i]!;
      members[i] = members[j]!;
      members[j] = t;
    }
    for (let i = 0; i < keep; i++) chosen.push(members[i]!);
  }
  if (chosen.length === 0 && labels.length > 0) {
    throw new DataOptionError('fraction', `subset fraction ${fraction} keeps no samples of any class (${labels.length} samples)`);
  }
  return Uint32Array.from(chosen).sort();
}

/** Copies the samples at `indices` (in that order) into a new Split. */
export function takeSamples(split: Split, indices: ArrayLike<number>): Split {
  const per = split.n === 0 ? 0 : split.images.length / split.n;
  const images = new Uint8Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (!(i >= 0 && i < split.n)) throw new RangeError(`takeSamples: index ${i} at position ${k} is outside 0..${split.n - 1}`);
    images.set(split.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = split.labels[i]!;
  }
  return { images, labels, n: indices.length };
}

/**
 * A new Split keeping round(fraction·count_c) samples of each class c, deterministic
 * from `seed`. fraction must be in (0, 1]; 1 returns `split` itself.
 */
export function stratifiedSubset(split: Split, fraction: number, seed: number): Split {
  checkFraction(fraction);
  if (fraction === 1) return split;
  return takeSamples(split, stratifiedSubsetIndices(split.labels, fraction, seed));
}
