import { createRequire } from 'node:module';

type TTest2 = typeof import('@stdlib/stats-ttest2');
let ttest2: TTest2 | undefined;

/** Loaded on first use: the package pulls in ~300 small modules that other commands should not pay for. */
function loadTTest2(): TTest2 {
  ttest2 ??= createRequire(import.meta.url)('@stdlib/stats-ttest2') as TTest2;
  return ttest2;
}

export function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let sum = 0;
  for (const x of xs) sum += x;
  return sum / xs.length;
}

/** Sample standard deviation (n − 1 denominator); null below two values. */
export function sampleStd(xs: readonly number[]): number | null {
  const m = mean(xs);
  if (m === null || xs.length < 2) return null;
  let ss = 0;
  for (const x of xs) ss += (x - m) ** 2;
  return Math.sqrt(ss / (xs.length - 1));
}

export interface WelchResult {
  /** (mean(x) − mean(y)) / sqrt(s²x/nx + s²y/ny): positive when x is larger. */
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
  /** Two-sided p-value. */
  p: number;
}

/** Why a group has no test against the baseline. */
export type NoTestReason = 'baseline' | 'n<2' | 'no variance';

/**
 * Welch's unequal-variance t-test of x against y (stdlib's `ttest2`, two-sided).
 * Undefined below two values in either sample, or when both samples have zero variance:
 * those return the reason instead.
 */
export function welchTTest(x: readonly number[], y: readonly number[]): WelchResult | Exclude<NoTestReason, 'baseline'> {
  if (x.length < 2 || y.length < 2) return 'n<2';
  if (sampleStd(x) === 0 && sampleStd(y) === 0) return 'no variance';
  const r = loadTTest2()([...x], [...y], { variance: 'unequal', alternative: 'two-sided' });
  if (!Number.isFinite(r.statistic) || !Number.isFinite(r.df) || !Number.isFinite(r.pValue)) return 'no variance';
  return { t: r.statistic, df: r.df, p: r.pValue };
}
