import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, adamwStepJs, type AdamWHyper } from './adamw.js';
import { lrFactor } from './schedule.js';
import { loadNative } from '../native/addon.js';
import { initEngine } from '../engine/select.js';

test('adamw - first step moves each weight by lr·sign(g) (bias correction) plus decoupled decay, then clips', () => {
  const p = Float32Array.from([0.5, -0.5, 0.995, 0]);
  const g = Float32Array.from([2, -3, -1, 0.5]);
  const m = new Float32Array(4);
  const v = new Float32Array(4);
  adamwStepJs(p, g, m, v, { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 0, weightDecay: 0.1, step: 1, clip: 1 });
  // m̂ = g, v̂ = g², so the Adam step is lr·sign(g); decay subtracts lr·wd·p.
  const expect = [0.5 - 0.01 * 0.1 * 0.5 - 0.01, -0.5 + 0.01 * 0.1 * 0.5 + 0.01, 1, -0.01];
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(p[i] - expect[i]) < 1e-6, `p[${i}] = ${p[i]}, expected ${expect[i]}`);
  assert.ok(Math.abs(m[0] - 0.2) < 1e-7 && Math.abs(v[1] - 0.009) < 1e-7);
});

test('adamw - the native fused step equals the reference loop over many steps', () => {
  const native = loadNative();
  assert.ok(native.addon, `native addon required: ${native.reason}`);
  const n = 10_007;
  const make = () => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) * 1.2);
  const [p1, p2] = [make(), make()];
  const [m1, m2, v1, v2] = [0, 1, 2, 3].map(() => new Float32Array(n));
  for (let step = 1; step <= 5; step++) {
    const g = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7 + step));
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.05, step, clip: 1 };
    adamwStepJs(p1, g, m1, v1, h);
    native.addon.adamw(p2, g, m2, v2, h);
  }
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p1[i] - p2[i]));
  assert.ok(worst < 1e-6, `max |Δp| = ${worst}`);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(p2[i]) <= 1);
});

test('adamw - the native kernel and the reference report a NaN or Inf gradient, parameter or second moment alike', () => {
  const native = loadNative();
  assert.ok(native.addon, `native addon required: ${native.reason}`);
  const base: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0, step: 2, clip: 0 };
  for (const n of [1, 2, 3, 17, 63, 65]) {
    for (const at of new Set([0, n >> 1, n - 1])) {
      const cases: Array<{ what: string; g?: number; p?: number; h?: Partial<AdamWHyper>; bad: boolean }> = [
        { what: 'finite', bad: false },
        { what: 'gradient -0', g: -0, bad: false },
        { what: 'gradient NaN', g: Number.NaN, bad: true },
        { what: 'gradient Inf', g: Infinity, bad: true },
        { what: 'gradient -Inf, clipped parameter', g: -Infinity, h: { clip: 1 }, bad: true },
        { what: 'g² overflows the second moment', g: 1e30, bad: true },
        { what: 'decay overflows the parameter', p: 3e38, h: { lr: 1, weightDecay: 3 }, bad: true },
        { what: 'the same, clipped', p: 3e38, h: { lr: 1, weightDecay: 3, clip: 1 }, bad: false },
      ];
      for (const c of cases) {
        const g = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
        const p = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
        if (c.g !== undefined) g[at] = c.g;
        if (c.p !== undefined) p[at] = c.p;
        const h = { ...base, ...c.h };
        const p2 = Float32Array.from(p);
        const [m1, v1, m2, v2] = [0, 1, 2, 3].map(() => new Float32Array(n).fill(0.01)) as [
          Float32Array,
          Float32Array,
          Float32Array,
          Float32Array,
        ];
        assert.equal(adamwStepJs(p, g, m1, v1, h), c.bad, `js n=${n} at=${at} ${c.what}`);
        assert.equal(native.addon.adamw(p2, g, m2, v2, h), c.bad, `native n=${n} at=${at} ${c.what}`);
      }
    }
  }
});

test('adamw - apply names the parameter and what went NaN or Inf; skipStep counts a step and changes nothing', async () => {
  for (const backend of ['native', 'cpu'] as const) {
    await initEngine({ backend, threads: 1 });
    const params = ['a', 'b'].map((name) => ({
      name,
      variable: tf.variable(tf.tensor1d([0.5, -0.25, 0.125]), true, `adamw-${backend}-${name}`),
      group: 'fp32' as const,
      clip: false,
      decay: false,
    }));
    const opt = new AdamW(params, { lr: 0.01, binaryLr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0, latentClip: 1 });
    const grads = (b: number[]) => ({ [params[0]!.variable.name]: tf.tensor1d([1, 2, 3]), [params[1]!.variable.name]: tf.tensor1d(b) });
    const fine = grads([1, 1, 1]);
    assert.equal(opt.apply(fine, 1), null, backend);
    const before = params.map((p) => Array.from(p.variable.dataSync()));
    opt.skipStep();
    assert.equal(opt.step, 2);
    assert.deepEqual(
      params.map((p) => Array.from(p.variable.dataSync())),
      before,
      `${backend}: a skipped step changes no weight`,
    );
    const bad = grads([1, Number.NaN, 1]);
    assert.deepEqual(opt.apply(bad, 1), { param: params[1]!.variable.name, what: 'gradient', value: Number.NaN, index: 1 }, backend);
    assert.equal(opt.step, 3);
    tf.dispose([...Object.values(fine), ...Object.values(bad)]);
    for (const p of params) p.variable.dispose();
  }
});

test('schedule - cosine anneals from 1 to the floor; warm restarts start over each period', () => {
  const base = {
    name: 'cosine' as const,
    minLrFraction: 0.1,
    warmRestarts: false,
    restartPeriodSteps: 10,
    restartMultiplier: 2,
    totalSteps: 100,
  };
  assert.equal(lrFactor(0, base), 1);
  assert.ok(Math.abs(lrFactor(50, base) - 0.55) < 1e-12);
  assert.ok(Math.abs(lrFactor(100, base) - 0.1) < 1e-12);
  const sgdr = { ...base, warmRestarts: true };
  assert.equal(lrFactor(10, sgdr), 1);
  assert.ok(Math.abs(lrFactor(20, sgdr) - 0.55) < 1e-12); // second period is 20 steps long
  assert.equal(lrFactor(30, sgdr), 1);
  assert.equal(lrFactor(7, { ...base, name: 'constant' }), 1);
});
