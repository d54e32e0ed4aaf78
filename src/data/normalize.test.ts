import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataOptionError } from './errors.js';
import { channelStats, computeNormalization, fillBatch, type NormalizationMode } from './normalize.js';
import { loadDataset } from './registry.js';
import { stratifiedSubset } from './subset.js';
import { makeSyntheticDataset } from './synthetic.js';
import type { Dataset } from './types.js';

/** Mean and population std of channel c over all normalised training pixels, via fillBatch. */
function normalisedStats(ds: Pick<Dataset, 'shape' | 'train'>, mode: NormalizationMode): Array<{ mean: number; std: number }> {
  const norm = computeNormalization(ds, mode);
  const [h, w, ch] = ds.shape;
  const out = new Float32Array(ds.train.n * h * w * ch);
  fillBatch(
    ds.train,
    Uint32Array.from({ length: ds.train.n }, (_, i) => i),
    norm,
    out,
  );
  return Array.from({ length: ch }, (_, c) => {
    let s = 0;
    let sq = 0;
    let k = 0;
    for (let i = c; i < out.length; i += ch, k++) {
      s += out[i]!;
      sq += out[i]! * out[i]!;
    }
    const mean = s / k;
    return { mean, std: Math.sqrt(sq / k - mean * mean) };
  });
}

test('normalize - standard gives each channel mean 0 and std 1 on the training images', () => {
  // Channels with deliberately different distributions.
  const n = 500;
  const images = new Uint8Array(n * 4 * 3);
  for (let i = 0; i < images.length; i += 3) {
    images[i] = (i * 7) % 256;
    images[i + 1] = 100 + ((i * 13) % 11);
    images[i + 2] = (i % 6) * 40;
  }
  const ds = { shape: [2, 2, 3] as [number, number, number], train: { images, labels: new Uint8Array(n), n } };
  const norm = computeNormalization(ds, 'standard');
  assert.notEqual(norm.scale[0], norm.scale[1]);
  for (const { mean, std } of normalisedStats(ds, 'standard')) {
    assert.ok(Math.abs(mean) < 1e-5, `mean ${mean}`);
    assert.ok(Math.abs(std - 1) < 1e-5, `std ${std}`);
  }
});

test('normalize - standard on real Fashion-MNIST matches the published statistics', async () => {
  const ds = await loadDataset({ name: 'fashion-mnist' });
  const { mean, std } = channelStats(ds.train.images, 1);
  assert.ok(Math.abs(mean[0]! / 255 - 0.286) < 1e-4, `mean ${mean[0]! / 255}`);
  assert.ok(Math.abs(std[0]! / 255 - 0.353) < 1e-4, `std ${std[0]! / 255}`);
  const norm = computeNormalization(ds, 'standard');
  assert.ok(Math.abs(norm.offset[0]! + mean[0]! / std[0]!) < 1e-6);
});

test('normalize - standard uses the statistics of the subset it is given', () => {
  const ds = makeSyntheticDataset({ numClasses: 4, trainSize: 400, seed: 2 });
  const sub = { shape: ds.shape, train: stratifiedSubset(ds.train, 0.1, 1) };
  const [s] = normalisedStats(sub, 'standard');
  assert.ok(Math.abs(s!.mean) < 1e-5 && Math.abs(s!.std - 1) < 1e-5);
  assert.notEqual(computeNormalization(sub, 'standard').offset[0], computeNormalization(ds, 'standard').offset[0]);
});

test('normalize - none, unit and pm1 map 0 and 255 to their ranges', () => {
  const images = Uint8Array.from([0, 255, 51]);
  const ds = { shape: [1, 3, 1] as [number, number, number], train: { images, labels: new Uint8Array(1), n: 1 } };
  const expected: Record<string, number[]> = { none: [0, 255, 51], unit: [0, 1, 0.2], pm1: [-1, 1, -0.6] };
  for (const [mode, values] of Object.entries(expected)) {
    const out = new Float32Array(3);
    fillBatch(ds.train, [0], computeNormalization(ds, mode as NormalizationMode), out);
    values.forEach((v, i) => assert.ok(Math.abs(out[i]! - v) < 1e-6, `${mode}: ${out[i]} vs ${v}`));
  }
  assert.throws(
    () => computeNormalization(ds, 'zscore' as NormalizationMode),
    (err: unknown) => err instanceof DataOptionError && /valid modes: none, unit, standard, pm1/.test(err.message),
  );
});

test('normalize - fillBatch writes the indexed samples as NHWC floats with labels', () => {
  const ds = makeSyntheticDataset({ shape: [2, 3, 2], numClasses: 3, trainSize: 9, seed: 5 });
  const norm = computeNormalization(ds, 'standard');
  const per = 12;
  const indices = [4, 0, 8];
  const out = new Float32Array(5 * per).fill(-99); // longer than the batch
  const labels = new Int32Array(5).fill(-1);
  fillBatch(ds.train, Uint32Array.from(indices), norm, out, labels);
  indices.forEach((i, b) => {
    assert.equal(labels[b], ds.train.labels[i]);
    for (let j = 0; j < per; j++) {
      const c = j % 2;
      const want = Math.fround(ds.train.images[i * per + j]! * norm.scale[c]! + norm.offset[c]!);
      assert.equal(out[b * per + j], want);
    }
  });
  assert.equal(out[3 * per], -99, 'nothing written past the batch');
  assert.equal(labels[3], -1);
  assert.throws(() => fillBatch(ds.train, [9], norm, out), /index 9 at position 0 is outside 0\.\.8/);
  assert.throws(() => fillBatch(ds.train, [0, 1], norm, new Float32Array(per)), /out holds 12 floats, batch of 2 needs 24/);
});
