import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { randomGradient } from '../collective/testing.js';
import { fillGradients, flatLayout, gradientViews, layoutVector } from './gradients.js';

const param = (name: string, shape: number[]) => ({ variable: { name, size: shape.reduce((a, b) => a * b, 1), shape } });

test('gradients - the layout puts parameters in model order; its vector has one bucket per parameter, then the metrics', () => {
  const layout = flatLayout([param('w', [2, 3]), param('b', [4])]);
  assert.deepEqual(layout.offsets, [0, 6]);
  assert.equal(layout.length, 10);
  assert.equal(layout.index.get('b'), 1);
  const vec = layoutVector(layout, 2);
  assert.deepEqual(vec.lengths, [6, 4, 1, 1]);
  assert.throws(() => layoutVector(flatLayout([param('w', [2, 0])]), 2), /parameter w has no elements/);
});

test('gradients - fillGradients writes scale · gradient at each offset (missing gradients are zero)', () => {
  const params = [{ variable: { name: 'w', size: 300 } }, { variable: { name: 'b', size: 7 } }, { variable: { name: 'g', size: 5 } }];
  const offsets = [0, 300, 307];
  const w = randomGradient(300, 1);
  const b = randomGradient(7, 2);
  const vec = new Float32Array(314).fill(9);
  for (const scale of [1, 86 / 256]) {
    fillGradients(vec, params, offsets, { w: { dataSync: () => w }, b: { dataSync: () => Array.from(b) } }, scale);
    for (let i = 0; i < 300; i++) assert.equal(vec[i], Math.fround((w[i] as number) * scale), `w[${i}] scale ${scale}`);
    for (let i = 0; i < 7; i++) assert.equal(vec[300 + i], Math.fround((b[i] as number) * scale));
    assert.deepEqual(Array.from(vec.subarray(307, 312)), [0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(vec.subarray(312)), [9, 9], 'metrics untouched');
  }
  assert.throws(
    () => fillGradients(vec, params, offsets, { w: { dataSync: () => new Float32Array(3) } }, 1),
    /gradient of w: expected 300 elements, got 3/,
  );
});

test('gradients - fillGradients writes a gradient with NaN, Inf or a value beyond the limit as zeros and names the first', () => {
  const params = [{ variable: { name: 'w', size: 65 } }, { variable: { name: 'b', size: 3 } }];
  const offsets = [0, 65];
  const clean = { w: randomGradient(65, 3), b: randomGradient(3, 4) };
  const fill = (w: Float32Array, b: Float32Array, limit?: number) => {
    const vec = new Float32Array(68).fill(9);
    const problem = fillGradients(vec, params, offsets, { w: { dataSync: () => w }, b: { dataSync: () => b } }, 0.5, limit);
    return { vec, problem };
  };
  assert.equal(fill(clean.w, clean.b).problem, null);
  for (const [special, word] of [
    [Number.NaN, 'NaN'],
    [Infinity, 'Inf'],
    [-Infinity, '-Inf'],
  ] as const) {
    const b = Float32Array.from(clean.b);
    b[2] = special;
    const { vec, problem } = fill(clean.w, b);
    assert.equal(problem, `gradient of b is ${word} (element 2)`);
    assert.deepEqual(Array.from(vec.subarray(65)), [0, 0, 0], 'the bad gradient is sent as zeros');
    assert.equal(vec[64], Math.fround((clean.w[64] as number) * 0.5), 'the others as they are');
  }
  const w = Float32Array.from(clean.w);
  w[40] = 2 * 70000; // 70000 after the shard scale: beyond what fp16 carries
  assert.equal(fill(w, clean.b).problem, null, 'finite: fine for fp32');
  const over = fill(w, clean.b, 65520);
  assert.equal(over.problem, 'gradient of w is 70000 (element 40; the wire format carries |x| < 65520)');
  assert.ok(over.vec.subarray(0, 65).every((x) => x === 0));
});

test('gradients - gradientViews: one tensor per parameter over its slice of the flat vector, in its shape', async () => {
  await tf.setBackend('cpu');
  const flat = Float32Array.from({ length: 2 * 3 + 4 + 2 }, (_, i) => i + 0.5);
  const params = [param('w', [2, 3]), param('b', [4])];
  const views = gradientViews(params, [0, 6], flat);
  try {
    assert.deepEqual(views.w?.shape, [2, 3]);
    assert.deepEqual(Array.from(views.w?.dataSync() ?? []), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
    assert.deepEqual(Array.from(views.b?.dataSync() ?? []), [6.5, 7.5, 8.5, 9.5]);
    flat[7] = 99; // a view, not a copy
    assert.equal(views.b?.dataSync()[1], 99);
  } finally {
    tf.dispose(views);
  }
  assert.deepEqual(Array.from(flat.subarray(10)), [10.5, 11.5], 'the trailing metrics are not part of any tensor');
});
