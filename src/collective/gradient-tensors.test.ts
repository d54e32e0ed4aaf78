import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { gradientViews } from './gradient-tensors.js';

test('gradient tensors - one tensor per parameter over its slice of the flat vector, in its shape', async () => {
  await tf.setBackend('cpu');
  const flat = Float32Array.from({ length: 2 * 3 + 4 + 2 }, (_, i) => i + 0.5);
  const params = [{ variable: { name: 'w', size: 6, shape: [2, 3] } }, { variable: { name: 'b', size: 4, shape: [4] } }];
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
