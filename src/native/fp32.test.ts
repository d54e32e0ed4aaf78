import { test } from 'node:test';
import { deepEqual, equal, throws } from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  assertClose,
  convBackpropFilterRef,
  convBackpropInputRef,
  convGeometry,
  convRef,
  filterSize,
  inputSize,
  outputSize,
  randomFloats,
  requireAddon,
} from './testing.js';
import type { Conv2DGeometry } from './addon.js';

test('sgemm - all four transpose combinations equal a JS loop (alpha, beta, subarray offsets)', () => {
  const addon = requireAddon();
  let seed = 1;
  for (const transA of [false, true])
    for (const transB of [false, true])
      for (const [m, n, k] of [
        [1, 1, 1],
        [3, 5, 7],
        [17, 64, 129],
        [65, 3, 31],
      ]) {
        // Operands live at odd offsets inside larger buffers.
        const a = randomFloats(m * k + 3, seed++).subarray(3);
        const b = randomFloats(k * n + 5, seed++).subarray(5);
        const c0 = randomFloats(m * n, seed++);
        const alpha = 1.5,
          beta = 0.25;
        const want = new Float64Array(m * n);
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = alpha * s + beta * c0[i * n + j];
          }
        const c = Float32Array.from(c0);
        addon.sgemm(transA, transB, m, n, k, alpha, a, b, beta, c);
        assertClose(c, want, 1e-5, 1e-5 * Math.sqrt(k), `transA=${transA} transB=${transB} ${m}x${n}x${k}`);
        c.fill(NaN);
        addon.sgemm(transA, transB, m, n, k, 1, a, b, 0, c); // beta = 0 ignores NaN in C
        const plain = want.map((v, i) => (v - beta * c0[i]) / alpha);
        assertClose(c, plain, 1e-5, 1e-5 * Math.sqrt(k), `beta=0 transA=${transA} transB=${transB}`);
      }
});

test('sgemm - tiled results are bit-identical for every thread count, and equal a JS loop', () => {
  const addon = requireAddon();
  const threadsBefore = addon.info().threads;
  const modeBefore = addon.sgemmMode();
  let seed = 100;
  try {
    equal(addon.sgemmMode('tiled'), 'tiled');
    // Shapes large enough to be cut into tiles along columns, rows and both, with ragged tails.
    for (const [m, n, k] of [
      [37, 1030, 33],
      [2100, 7, 19],
      [2050, 600, 9],
    ])
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const what = `transA=${transA} transB=${transB} ${m}x${n}x${k}`;
          const a = randomFloats(m * k, seed++);
          const b = randomFloats(k * n, seed++);
          const c0 = randomFloats(m * n, seed++);
          const run = (threads: number) => {
            addon.setThreads(threads);
            const c = Float32Array.from(c0);
            addon.sgemm(transA, transB, m, n, k, 0.5, a, b, 0.75, c);
            return c;
          };
          const one = run(1);
          for (const threads of [2, 3]) deepEqual(run(threads), one, `${what}: ${threads} threads differ from 1`);
          const want = new Float64Array(m * n);
          for (let i = 0; i < m; i++)
            for (let j = 0; j < n; j++) {
              let s = 0;
              for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
              want[i * n + j] = 0.5 * s + 0.75 * c0[i * n + j];
            }
          assertClose(one, want, 1e-5, 1e-5 * Math.sqrt(k), what);
          addon.sgemmMode('openblas');
          const c = Float32Array.from(c0);
          addon.sgemm(transA, transB, m, n, k, 0.5, a, b, 0.75, c);
          assertClose(c, want, 1e-5, 1e-5 * Math.sqrt(k), `openblas mode ${what}`);
          addon.sgemmMode('tiled');
        }
    throws(() => addon.sgemmMode('fast' as never), /'tiled' or 'openblas', got 'fast'/);
  } finally {
    addon.sgemmMode(modeBefore);
    addon.setThreads(threadsBefore);
  }
});

const CONV_CASES: { g: Conv2DGeometry; pad: 'same' | 'valid' }[] = [];
for (const stride of [1, 2])
  for (const pad of ['same', 'valid'] as const) {
    CONV_CASES.push({ g: convGeometry(2, 7, 6, 3, 3, 3, 4, stride, pad), pad });
    CONV_CASES.push({ g: convGeometry(1, 8, 5, 5, 5, 2, 3, stride, pad), pad });
    CONV_CASES.push({ g: convGeometry(3, 4, 4, 6, 1, 1, 7, stride, pad), pad });
  }

test('conv2d - forward and both backprops equal JS reference loops', () => {
  const addon = requireAddon();
  let seed = 10;
  for (const { g } of CONV_CASES) {
    const what = JSON.stringify(g);
    const x = randomFloats(inputSize(g), seed++);
    const w = randomFloats(filterSize(g), seed++);
    const dy = randomFloats(outputSize(g), seed++);
    const tol = 1e-5 * Math.sqrt(g.kH * g.kW * g.inC * g.outC);
    const y = new Float32Array(outputSize(g)).fill(NaN);
    addon.conv2d(x, w, g, y);
    assertClose(y, convRef(x, w, g), 1e-5, tol, `conv2d ${what}`);
    const dx = new Float32Array(inputSize(g)).fill(NaN);
    addon.conv2dBackpropInput(dy, w, g, dx);
    assertClose(dx, convBackpropInputRef(dy, w, g), 1e-5, tol, `conv2dBackpropInput ${what}`);
    const dw = new Float32Array(filterSize(g)).fill(NaN);
    addon.conv2dBackpropFilter(x, dy, g, dw);
    assertClose(dw, convBackpropFilterRef(x, dy, g), 1e-5, 1e-5 * Math.sqrt(g.batch * g.outH * g.outW), `conv2dBackpropFilter ${what}`);
  }
});

test('conv2d - matches the tfjs cpu kernels Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter', async () => {
  const addon = requireAddon();
  await tf.setBackend('cpu');
  let seed = 50;
  for (const { g, pad } of CONV_CASES) {
    const what = `${pad} ${JSON.stringify(g)}`;
    const xs: [number, number, number, number] = [g.batch, g.inH, g.inW, g.inC];
    const ws: [number, number, number, number] = [g.kH, g.kW, g.inC, g.outC];
    const x = randomFloats(inputSize(g), seed++);
    const w = randomFloats(filterSize(g), seed++);
    const dy = randomFloats(outputSize(g), seed++);
    const strides: [number, number] = [g.strideH, g.strideW];
    const ys: [number, number, number, number] = [g.batch, g.outH, g.outW, g.outC];
    const common = { strides, pad, dataFormat: 'NHWC' };
    const yT = tf
      .engine()
      .runKernel('Conv2D', { x: tf.tensor4d(x, xs), filter: tf.tensor4d(w, ws) }, { ...common, dilations: 1 }) as tf.Tensor;
    const dxT = tf
      .engine()
      .runKernel(
        'Conv2DBackpropInput',
        { dy: tf.tensor4d(dy, ys), filter: tf.tensor4d(w, ws) },
        { ...common, inputShape: xs },
      ) as tf.Tensor;
    const dwT = tf
      .engine()
      .runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(x, xs), dy: tf.tensor4d(dy, ys) }, { ...common, filterShape: ws }) as tf.Tensor;
    const y = new Float32Array(outputSize(g));
    addon.conv2d(x, w, g, y);
    assertClose(y, yT.dataSync(), 1e-4, 1e-5, `Conv2D ${what}`);
    const dx = new Float32Array(inputSize(g));
    addon.conv2dBackpropInput(dy, w, g, dx);
    assertClose(dx, dxT.dataSync(), 1e-4, 1e-5, `Conv2DBackpropInput ${what}`);
    const dw = new Float32Array(filterSize(g));
    addon.conv2dBackpropFilter(x, dy, g, dw);
    assertClose(dw, dwT.dataSync(), 1e-4, 1e-5, `Conv2DBackpropFilter ${what}`);
    tf.dispose([yT, dxT, dwT]);
  }
});
