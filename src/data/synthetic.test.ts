import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataOptionError } from './errors.js';
import { makeSyntheticDataset } from './synthetic.js';

test('synthetic - same options give identical data, another seed different data', () => {
  const opts = { seed: 9, shape: [5, 4, 3] as [number, number, number], numClasses: 3, trainSize: 30, testSize: 12 };
  const a = makeSyntheticDataset(opts);
  const b = makeSyntheticDataset(opts);
  assert.deepEqual(
    [a.shape, a.numClasses, a.train.n, a.test.n, a.train.images.length, a.test.images.length],
    [[5, 4, 3], 3, 30, 12, 30 * 60, 12 * 60],
  );
  assert.deepEqual([...a.train.images], [...b.train.images]);
  assert.deepEqual([...a.test.labels], [...b.test.labels]);
  assert.notDeepEqual([...makeSyntheticDataset({ ...opts, seed: 10 }).train.images], [...a.train.images]);
  assert.notDeepEqual([...a.train.images.subarray(0, 60 * 12)], [...a.test.images], 'train and test are different draws');
});

test('synthetic - classes are balanced', () => {
  const ds = makeSyntheticDataset({ numClasses: 4, trainSize: 10, testSize: 8 });
  const count = (l: Uint8Array): number[] => [0, 1, 2, 3].map((c) => l.filter((v) => v === c).length);
  assert.deepEqual(count(ds.train.labels), [3, 3, 2, 2]);
  assert.deepEqual(count(ds.test.labels), [2, 2, 2, 2]);
});

test('synthetic - a nearest-class-mean classifier is far above chance on the test split', () => {
  const ds = makeSyntheticDataset({ numClasses: 10, trainSize: 1000, testSize: 500, seed: 1 });
  const d = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const means = new Float64Array(ds.numClasses * d);
  const counts = new Float64Array(ds.numClasses);
  for (let i = 0; i < ds.train.n; i++) {
    const c = ds.train.labels[i]!;
    counts[c]!++;
    for (let j = 0; j < d; j++) means[c * d + j]! += ds.train.images[i * d + j]!;
  }
  for (let c = 0; c < ds.numClasses; c++) for (let j = 0; j < d; j++) means[c * d + j]! /= counts[c]!;
  let correct = 0;
  for (let i = 0; i < ds.test.n; i++) {
    let best = -1;
    let bestDist = Infinity;
    for (let c = 0; c < ds.numClasses; c++) {
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (ds.test.images[i * d + j]! - means[c * d + j]!) ** 2;
      if (dist < bestDist) [best, bestDist] = [c, dist];
    }
    if (best === ds.test.labels[i]) correct++;
  }
  const accuracy = correct / ds.test.n;
  assert.ok(accuracy > 0.8 && accuracy < 1, `accuracy ${accuracy} (chance 0.1); 1.0 would mean the noise is too weak to be a test`);
});

test('synthetic - invalid options name the field', () => {
  assert.throws(
    () => makeSyntheticDataset({ shape: [8, 0, 1] }),
    (err: unknown) => err instanceof DataOptionError && err.option === 'dataset.shape[1]',
  );
  assert.throws(() => makeSyntheticDataset({ noiseStd: -1 }), /noiseStd must be a finite number ≥ 0, got -1/);
  assert.throws(() => makeSyntheticDataset({ trainSize: 1.5 }), /trainSize must be an integer/);
});
