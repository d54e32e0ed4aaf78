// The native backend's per-weight sign cache: one array per weight, re-signed in place for a new
// weight version only when no tensor of the old version is alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from './select.js';
import { signPM1 } from './ops.js';
import { engineState } from './state.js';

/** Changes a weight in place the way the optimizer does (backend array, then a new weight version). */
function updateInPlace(w: tf.Variable, values: number[]): void {
  const data = (tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(w.dataId);
  data.values.set(values);
  engineState.weightVersion++;
}

test('sign cache - a sign tensor kept across a weight update keeps its values; a released one is re-signed in place', async () => {
  await initEngine({ backend: 'native', threads: 1 });
  const w = tf.variable(tf.tensor2d([0.5, -0.5, 0, -2], [2, 2]));
  const a = signPM1(w, true);
  assert.deepEqual(Array.from(a.dataSync()), [1, -1, 1, -1]);
  const a2 = signPM1(w, true); // same version: the same cached values
  assert.deepEqual(Array.from(a2.dataSync()), [1, -1, 1, -1]);
  a2.dispose();

  updateInPlace(w, [-1, 1, -3, 4]);
  const b = signPM1(w, true); // `a` is alive: must not be overwritten
  assert.deepEqual(Array.from(b.dataSync()), [-1, 1, -1, 1]);
  assert.deepEqual(Array.from(a.dataSync()), [1, -1, 1, -1]);
  const bValues = b.dataSync();
  a.dispose();
  b.dispose();

  updateInPlace(w, [2, 2, -2, -2]);
  const c = signPM1(w, true); // nothing alive: b's array is reused
  assert.deepEqual(Array.from(c.dataSync()), [1, 1, -1, -1]);
  assert.equal(c.dataSync(), bValues, 'expected the released array to be reused');
  c.dispose();
  w.dispose();
});
