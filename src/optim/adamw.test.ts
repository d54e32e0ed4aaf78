import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adamwStepJs } from './adamw.js';
import { lrFactor } from './schedule.js';
import { loadNative } from '../native/addon.js';

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
