import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mean, sampleStd, welchTTest, type WelchResult } from './stats.js';

// Reference values computed independently with mpmath at 40 digits (not with the product
// code nor stdlib):
//
//   from mpmath import mp, mpf, sqrt, betainc
//   mp.dps = 40
//   def welch(xs, ys):
//       x = [mpf(s) for s in xs]; y = [mpf(s) for s in ys]
//       def mv(v):
//           m = sum(v)/len(v); return m, sum((vi-m)**2 for vi in v)/(len(v)-1)
//       mx, vx = mv(x); my, vy = mv(y)
//       se2 = vx/len(x) + vy/len(y)
//       t = (mx-my)/sqrt(se2)
//       df = se2**2 / ((vx/len(x))**2/(len(x)-1) + (vy/len(y))**2/(len(y)-1))
//       p = betainc(df/2, mpf(1)/2, 0, df/(df+t*t), regularized=True)   # two-sided
//       return t, df, p
const FP32 = [0.905, 0.907, 0.903, 0.908, 0.906];
const BINARY = [0.891, 0.894, 0.889, 0.893, 0.89];
const REF_BINARY_VS_FP32 = { t: -11.384199576606166, df: 7.9552517091361095, p: 3.347288724517046e-6 };
const REF_SMALL_VS_FP32 = { t: -2.230603242117284, df: 2.014033253289007, p: 0.1545534348178776 };

function tested(r: ReturnType<typeof welchTTest>): WelchResult {
  assert.equal(typeof r, 'object', `expected a test result, got ${String(r)}`);
  return r as WelchResult;
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} differs from ${expected} by more than ${tol}`);
}

test('stats - Welch t, df and two-sided p match the mpmath reference to 1e-6', () => {
  for (const [x, y, ref] of [
    [BINARY, FP32, REF_BINARY_VS_FP32],
    [[0.85, 0.87, 0.9], FP32, REF_SMALL_VS_FP32],
  ] as const) {
    const r = tested(welchTTest(x, y));
    close(r.t, ref.t, 1e-6, 't');
    close(r.df, ref.df, 1e-6, 'df');
    close(r.p, ref.p, 1e-6, 'p');
    // p this small needs a relative check too: 1e-6 absolute alone would accept 0.
    assert.ok(Math.abs(r.p - ref.p) / ref.p < 1e-6, `p relative error: ${r.p} vs ${ref.p}`);
  }
  const swapped = tested(welchTTest(FP32, BINARY));
  close(swapped.t, -REF_BINARY_VS_FP32.t, 1e-9, 't is antisymmetric');
  close(swapped.p, REF_BINARY_VS_FP32.p, 1e-12, 'p is symmetric');
});

test('stats - no test below two values per sample or without any variance', () => {
  assert.equal(welchTTest([0.85], FP32), 'n<2');
  assert.equal(welchTTest(FP32, [0.9]), 'n<2');
  assert.equal(welchTTest([0.5, 0.5], [0.7, 0.7]), 'no variance');
  // One sample constant, the other not: still defined.
  assert.equal(typeof welchTTest([0.5, 0.5], [0.6, 0.7]), 'object');
});

test('stats - mean and sample standard deviation (n − 1)', () => {
  assert.equal(mean([]), null);
  assert.equal(sampleStd([1]), null);
  close(mean([1, 2, 3, 4])!, 2.5, 1e-15, 'mean');
  // var = ((1.5² + 0.5²) * 2) / 3 = 5/3
  close(sampleStd([1, 2, 3, 4])!, Math.sqrt(5 / 3), 1e-15, 'std');
  close(sampleStd(FP32)!, 0.0019235384061671345, 1e-12, 'std of fp32 accuracies');
});
