import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataOptionError } from './errors.js';
import { stratifiedSubset, stratifiedSubsetIndices } from './subset.js';
import type { Split } from './types.js';

/** Unbalanced split: class c has counts[c] samples, interleaved; each sample's 2 pixels encode its index. */
function makeSplit(counts: number[]): Split {
  const labels: number[] = [];
  const left = [...counts];
  while (left.some((c) => c > 0))
    left.forEach((c, k) => {
      if (c > 0) {
        labels.push(k);
        left[k]!--;
      }
    });
  const n = labels.length;
  const images = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) [images[2 * i], images[2 * i + 1]] = [i & 0xff, i >> 8];
  return { images, labels: Uint8Array.from(labels), n };
}

const classCounts = (labels: Uint8Array, k: number): number[] => Array.from({ length: k }, (_, c) => labels.filter((l) => l === c).length);

test('subset - keeps round(fraction·count) samples of every class', () => {
  const split = makeSplit([10, 7, 3, 1, 600]);
  const sub = stratifiedSubset(split, 0.5, 1);
  // 5, round(3.5) = 4, round(1.5) = 2, round(0.5) = 1, 300
  assert.deepEqual(classCounts(sub.labels, 5), [5, 4, 2, 1, 300]);
  assert.equal(sub.n, 312);
  assert.deepEqual(classCounts(stratifiedSubset(split, 0.1, 1).labels, 5), [1, 1, 0, 0, 60]);
});

test('subset - copies the chosen samples in their original order', () => {
  const split = makeSplit([50, 40, 30]);
  const idx = stratifiedSubsetIndices(split.labels, 0.3, 7);
  const sub = stratifiedSubset(split, 0.3, 7);
  assert.equal(sub.n, idx.length);
  assert.equal(new Set(idx).size, idx.length);
  for (let k = 0; k < idx.length; k++) {
    if (k > 0) assert.ok(idx[k]! > idx[k - 1]!);
    const i = idx[k]!;
    assert.equal(sub.labels[k], split.labels[i]);
    assert.equal(sub.images[2 * k]! + 256 * sub.images[2 * k + 1]!, i);
  }
});

test('subset - the choice is determined by the seed', () => {
  const split = makeSplit([200, 200]);
  const a = stratifiedSubsetIndices(split.labels, 0.25, 42);
  assert.deepEqual(stratifiedSubsetIndices(split.labels, 0.25, 42), a);
  assert.notDeepEqual(stratifiedSubsetIndices(split.labels, 0.25, 43), a);
});

test('subset - fraction 1 returns the split itself and bad fractions are refused', () => {
  const split = makeSplit([3, 3]);
  assert.equal(stratifiedSubset(split, 1, 0), split);
  for (const bad of [0, -0.1, 1.5, Number.NaN, Infinity]) {
    assert.throws(
      () => stratifiedSubset(split, bad, 0),
      (err: unknown) =>
        err instanceof DataOptionError &&
        err.option === 'fraction' &&
        err.message.startsWith('subset fraction must be a number in (0, 1], got '),
    );
  }
  assert.throws(() => stratifiedSubset(split, 0.1, 0), /keeps no samples of any class/);
});
