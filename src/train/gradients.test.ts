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
