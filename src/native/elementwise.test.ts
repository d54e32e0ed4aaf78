import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdamWHyperparams } from './addon.js';
import { assertClose, assertExact, randomFloats, requireAddon } from './testing.js';

test('signInto - ±1 with sign(0) = +1 (and -0, NaN -> +1), in place allowed', () => {
  const addon = requireAddon();
  const src = Float32Array.from([-2, -0, 0, 3, NaN, -Infinity, 1e-30, -1e-30]);
  const dst = new Float32Array(src.length);
  addon.signInto(src, dst);
  assert.deepEqual([...dst], [-1, 1, 1, 1, 1, -1, 1, -1]);
  const big = randomFloats(200_003, 3);
  const want = big.map((v) => (v < 0 ? -1 : 1));
  addon.signInto(big, big);
  assertExact(big, want, 'in place, multi-threaded size');
});

test('steGrad - passes the gradient where |x| <= threshold (inclusive) and zeroes it elsewhere', () => {
  const addon = requireAddon();
  const x = Float32Array.from([-1.5, -1, -0.2, 0, 1, 1.0001, NaN]);
  const g = Float32Array.from([1, 2, 3, 4, 5, 6, 7]);
  const out = new Float32Array(7);
  addon.steGrad(g, x, out);
  assert.deepEqual([...out], [0, 2, 3, 4, 5, 0, 0]);
  addon.steGrad(g, x, out, 0.5);
  assert.deepEqual([...out], [0, 0, 3, 4, 0, 0, 0]);
});

/** The AdamW step in float64 (documented in NativeAddon.adamw). */
function adamwRef(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyperparams): void {
  const c1 = 1 - h.beta1 ** h.step,
    c2 = 1 - h.beta2 ** h.step;
  const wd = h.weightDecay ?? 0,
    clip = h.clip ?? 0;
  for (let i = 0; i < p.length; i++) {
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    let q = p[i] - h.lr * wd * p[i] - (h.lr * m[i]) / c1 / (Math.sqrt(v[i] / c2) + h.epsilon);
    if (clip > 0) q = Math.min(clip, Math.max(-clip, q));
    p[i] = q;
  }
}

test('adamw - fused step with decoupled decay and clip equals a JS reference loop over several steps', () => {
  const addon = requireAddon();
  for (const clip of [0, 0.3]) {
    const n = 70_001;
    const p1 = randomFloats(n, 1, false).map((x) => x * 0.5);
    const p2 = Float32Array.from(p1);
    const [m1, v1, m2, v2] = [0, 1, 2, 3].map(() => new Float32Array(n));
    for (let step = 1; step <= 4; step++) {
      const g = randomFloats(n, 10 + step);
      const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.05, step, clip };
      addon.adamw(p1, g, m1, v1, h);
      adamwRef(p2, g, m2, v2, h);
    }
    assertClose(p1, p2, 1e-5, 1e-6, `p clip=${clip}`);
    assertClose(m1, m2, 1e-5, 1e-7, `m clip=${clip}`);
    assertClose(v1, v2, 1e-5, 1e-9, `v clip=${clip}`);
    if (clip > 0) assert.ok(p1.every((x) => Math.abs(x) <= Math.fround(clip)) && p1.some((x) => x === Math.fround(clip)), 'clipped');
  }
});

test('adamw - first step moves by lr·sign(g) and decays by lr·wd·p; defaults weightDecay = clip = 0', () => {
  const addon = requireAddon();
  const p = Float32Array.from([0.5, -0.5]);
  const g = Float32Array.from([2, -3]);
  const m = new Float32Array(2),
    v = new Float32Array(2);
  addon.adamw(p, g, m, v, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 0, step: 1 });
  assertClose(p, [0.49, -0.49], 1e-6, 1e-7, 'no decay');
  addon.adamw(p.fill(0.5), g, m.fill(0), v.fill(0), { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 0, step: 1, weightDecay: 0.1 });
  assertClose(p, [0.5 - 0.0005 - 0.01, 0.5 - 0.0005 + 0.01], 1e-6, 1e-7, 'decay');
});

function bnForwardRef(x: Float32Array, rows: number, c: number, gamma: Float32Array, beta: Float32Array, eps: number) {
  const y = new Float64Array(rows * c),
    mean = new Float64Array(c),
    invStd = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * c + j];
    const mu = s / rows;
    let q = 0;
    for (let r = 0; r < rows; r++) q += (x[r * c + j] - mu) ** 2;
    const is = 1 / Math.sqrt(q / rows + eps);
    mean[j] = mu;
    invStd[j] = is;
    for (let r = 0; r < rows; r++) y[r * c + j] = (x[r * c + j] - mu) * is * gamma[j] + beta[j];
  }
  return { y, mean, invStd };
}

function bnBackwardRef(
  dy: Float32Array,
  x: Float32Array,
  rows: number,
  c: number,
  gamma: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
) {
  const dx = new Float64Array(rows * c),
    dgamma = new Float64Array(c),
    dbeta = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    let sdy = 0,
      sdyx = 0;
    for (let r = 0; r < rows; r++) {
      sdy += dy[r * c + j];
      sdyx += dy[r * c + j] * (x[r * c + j] - mean[j]) * invStd[j];
    }
    dgamma[j] = sdyx;
    dbeta[j] = sdy;
    for (let r = 0; r < rows; r++) {
      const xhat = (x[r * c + j] - mean[j]) * invStd[j];
      dx[r * c + j] = gamma[j] * invStd[j] * (dy[r * c + j] - sdy / rows - (xhat * sdyx) / rows);
    }
  }
  return { dx, dgamma, dbeta };
}

test('batchNormForward / batchNormBackward - equal JS reference loops ([rows][C], C innermost)', () => {
  const addon = requireAddon();
  let seed = 20;
  for (const [rows, c] of [
    [1, 1],
    [2, 3],
    [37, 5],
    [4096, 64],
    [50_000, 3],
  ]) {
    const x = randomFloats(rows * c, seed++, false).map((v) => v * 3 + 5); // mean far from 0
    const gamma = randomFloats(c, seed++, false),
      beta = randomFloats(c, seed++, false);
    const dy = randomFloats(rows * c, seed++, false);
    const y = new Float32Array(rows * c),
      mean = new Float32Array(c),
      invStd = new Float32Array(c);
    addon.batchNormForward(x, rows, c, gamma, beta, 1e-3, y, mean, invStd);
    const ref = bnForwardRef(x, rows, c, gamma, beta, 1e-3);
    const what = `rows=${rows} c=${c}`;
    assertClose(mean, ref.mean, 1e-6, 1e-6, `mean ${what}`);
    assertClose(invStd, ref.invStd, 1e-5, 1e-6, `invStd ${what}`);
    assertClose(y, ref.y, 1e-4, 1e-4, `y ${what}`);
    const dx = new Float32Array(rows * c),
      dgamma = new Float32Array(c),
      dbeta = new Float32Array(c);
    addon.batchNormBackward(dy, x, rows, c, gamma, mean, invStd, dx, dgamma, dbeta);
    const back = bnBackwardRef(dy, x, rows, c, gamma, mean, invStd);
    assertClose(dgamma, back.dgamma, 1e-4, 1e-4 * Math.sqrt(rows), `dgamma ${what}`);
    assertClose(dbeta, back.dbeta, 1e-4, 1e-4 * Math.sqrt(rows), `dbeta ${what}`);
    assertClose(dx, back.dx, 1e-4, 1e-4, `dx ${what}`);
  }
});

test('batchNormBackward - matches finite differences of sum(dy·y) through the batch statistics', () => {
  const addon = requireAddon();
  const rows = 6,
    c = 3,
    eps = 1e-3;
  const x = Float64Array.from(randomFloats(rows * c, 7, false), (v) => v * 2 + 1);
  const gamma = Float32Array.from([1.5, -0.7, 0.9]),
    beta = Float32Array.from([0.1, 0.2, -0.3]);
  const dy = randomFloats(rows * c, 8, false);
  const loss = (xs: Float64Array) => {
    const { y } = bnForwardRef(Float32Array.from(xs), rows, c, gamma, beta, eps);
    return y.reduce((s, v, i) => s + v * dy[i], 0);
  };
  const xf = Float32Array.from(x);
  const y = new Float32Array(rows * c),
    mean = new Float32Array(c),
    invStd = new Float32Array(c);
  addon.batchNormForward(xf, rows, c, gamma, beta, eps, y, mean, invStd);
  const dx = new Float32Array(rows * c),
    dgamma = new Float32Array(c),
    dbeta = new Float32Array(c);
  addon.batchNormBackward(dy, xf, rows, c, gamma, mean, invStd, dx, dgamma, dbeta);
  const h = 1e-3;
  const fd = new Float64Array(rows * c);
  for (let i = 0; i < rows * c; i++) {
    const up = Float64Array.from(x),
      down = Float64Array.from(x);
    up[i] += h;
    down[i] -= h;
    fd[i] = (loss(up) - loss(down)) / (2 * h);
  }
  assertClose(dx, fd, 2e-2, 2e-3, 'dx vs central differences');
  // dgamma = Σ dy·x̂ and dbeta = Σ dy follow from y's linearity in gamma and beta.
  const { y: y0 } = bnForwardRef(xf, rows, c, new Float32Array(c).fill(1), new Float32Array(c), eps);
  const wantDgamma = [0, 1, 2].map((j) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += dy[r * c + j] * y0[r * c + j];
    return s;
  });
  const wantDbeta = [0, 1, 2].map((j) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += dy[r * c + j];
    return s;
  });
  assertClose(dgamma, wantDgamma, 1e-4, 1e-5, 'dgamma');
  assertClose(dbeta, wantDbeta, 1e-5, 1e-6, 'dbeta');
});

test('batchNormForward - null gamma/beta mean 1/0, results do not depend on the thread count', () => {
  const addon = requireAddon();
  const rows = 20_000,
    c = 7;
  const x = randomFloats(rows * c, 9, false);
  const run = (threads: number) => {
    addon.setThreads(threads);
    const y = new Float32Array(rows * c),
      mean = new Float32Array(c),
      invStd = new Float32Array(c);
    addon.batchNormForward(x, rows, c, null, null, 1e-5, y, mean, invStd);
    return { y, mean, invStd };
  };
  const before = addon.info().threads;
  try {
    const one = run(1),
      three = run(3);
    assertExact(three.y, one.y, 'y');
    assertExact(three.mean, one.mean, 'mean');
    const ref = bnForwardRef(x, rows, c, new Float32Array(c).fill(1), new Float32Array(c), 1e-5);
    assertClose(one.y, ref.y, 1e-4, 1e-4, 'y vs reference');
  } finally {
    addon.setThreads(before);
  }
});

test('batchNormApply - y = x·scale + shift per channel', () => {
  const addon = requireAddon();
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const y = new Float32Array(6);
  addon.batchNormApply(x, 2, 3, Float32Array.from([1, 2, 3]), Float32Array.from([0, -1, 1]), y);
  assert.deepEqual([...y], [1, 3, 10, 4, 9, 19]);
});
