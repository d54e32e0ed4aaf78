import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../engine/ops.js';
import { getQuantizer, UnknownQuantizerError } from './quantizers.js';
import { initEngine } from '../engine/select.js';

await initEngine({ backend: 'cpu', threads: 1 });

const xs = [-2, -1.5, -1, -0.5, -0.0001, 0, 0.3, 1, 1.0001, 3];

function gradOf(f: (x: tf.Tensor) => tf.Tensor, x: number[], upstream?: number[]): { y: number[]; g: number[] } {
  const xt = tf.tensor1d(x);
  const dy = tf.tensor1d(upstream ?? x.map((_, i) => i + 1));
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor) => tf.sum(tf.mul(f(a), dy)))([xt]);
  const y = Array.from(f(xt).dataSync());
  const g = Array.from(grads[0].dataSync());
  tf.dispose([xt, dy, value, ...grads]);
  return { y, g };
}

test('quantizers - ste_sign forward is sign with sign(0)=+1, gradient passes where |x| <= 1', () => {
  const { y, g } = gradOf((a) => getQuantizer('ste_sign').apply(a, 'input'), xs);
  assert.deepEqual(
    y,
    xs.map((v) => (v >= 0 ? 1 : -1)),
  );
  assert.deepEqual(
    g,
    xs.map((v, i) => (Math.abs(v) <= 1 ? i + 1 : 0)),
  );
});

test('quantizers - ste_sign clip option moves the straight-through window', () => {
  const { g } = gradOf((a) => getQuantizer({ id: 'ste_sign', clip: 2 }).apply(a, 'input'), xs);
  assert.deepEqual(
    g,
    xs.map((v, i) => (Math.abs(v) <= 2 ? i + 1 : 0)),
  );
});

test('quantizers - xnor scales sign by the per-output-channel mean |w| and passes scale·1[|w|<=1]', () => {
  // 3 inputs × 2 output channels
  const w = [
    [0.5, -2],
    [-0.25, 0.5],
    [0, 1.5],
  ];
  const wt = tf.tensor2d(w);
  const q = getQuantizer('xnor');
  const y = q.apply(wt, 'kernel').arraySync() as number[][];
  const scale = [(0.5 + 0.25 + 0) / 3, (2 + 0.5 + 1.5) / 3];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(y[r][c] - (w[r][c] >= 0 ? 1 : -1) * scale[c]) < 1e-6);
    }
  const g = tf
    .grad((a: tf.Tensor) => tf.sum(q.apply(a, 'kernel')))(wt)
    .arraySync() as number[][];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(g[r][c] - (Math.abs(w[r][c]) <= 1 ? scale[c] : 0)) < 1e-6, `g[${r}][${c}]`);
    }
  wt.dispose();
});

test('quantizers - rsign thresholds per channel and its threshold gradient is minus the summed input gradient', () => {
  const q = getQuantizer('rsign');
  const [alpha] = q.build!(2, 'test_rsign');
  alpha.assign(tf.tensor1d([0.5, -0.5]));
  const x = tf.tensor2d([
    [0.4, -0.6],
    [0.6, -0.4],
    [2, 0],
  ]);
  const y = q.apply(x, 'input').arraySync() as number[][];
  assert.deepEqual(y, [
    [-1, -1],
    [1, 1],
    [1, 1],
  ]);
  const { grads } = tf.variableGrads(() => tf.sum(q.apply(x, 'input')) as tf.Scalar, [alpha]);
  const gx = tf
    .grad((a: tf.Tensor) => tf.sum(q.apply(a, 'input')))(x)
    .arraySync() as number[][];
  // |x − α| <= 1 → 1: shifted = [[-0.1,-0.1],[0.1,0.1],[1.5,0.5]]
  assert.deepEqual(gx, [
    [1, 1],
    [1, 1],
    [0, 1],
  ]);
  assert.deepEqual(Array.from(grads[alpha.name].dataSync()), [-2, -3]);
  tf.dispose([x, alpha, ...Object.values(grads)]);
});

test('quantizers - int8 rounds to 255 levels per output channel with an identity gradient', () => {
  const w = tf.tensor2d([
    [1.27, -0.5],
    [0.013, 0.25],
    [-0.6, 0.1],
  ]);
  const q = getQuantizer('int8');
  const y = q.apply(w, 'kernel').arraySync() as number[][];
  const scale = [1.27 / 127, 0.5 / 127];
  const src = w.arraySync() as number[][];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 2; c++) {
      assert.ok(Math.abs(y[r][c] - Math.round(src[r][c] / scale[c]) * scale[c]) < 1e-6);
    }
  const g = tf
    .grad((a: tf.Tensor) => tf.sum(tf.mul(q.apply(a, 'kernel'), 3)))(w)
    .arraySync() as number[][];
  assert.deepEqual(g, [
    [3, 3],
    [3, 3],
    [3, 3],
  ]);
  w.dispose();
});

test('quantizers - identity is the float path exactly', () => {
  const { y, g } = gradOf((a) => getQuantizer('identity').apply(a, 'input'), xs);
  assert.deepEqual(
    y,
    xs.map((v) => Math.fround(v)),
  );
  assert.deepEqual(
    g,
    xs.map((_, i) => i + 1),
  );
});

test('quantizers - an unknown id names the valid ones', () => {
  assert.throws(
    () => getQuantizer('ternary'),
    (e: unknown) => e instanceof UnknownQuantizerError && /ternary/.test(e.message) && /ste_sign/.test(e.message),
  );
});
