export interface ScheduleOptions {
  name: 'cosine' | 'constant';
  /** Floor of the learning rate as a fraction of the base rate. */
  minLrFraction: number;
  /** SGDR: restart the cosine every period (T_0, then ×restartMultiplier). */
  warmRestarts: boolean;
  restartPeriodSteps: number;
  restartMultiplier: number;
  /** Steps in the whole run (cosine without restarts anneals over these). */
  totalSteps: number;
}

/** Learning-rate multiplier in [minLrFraction, 1] for a 0-based global step. */
export function lrFactor(step: number, s: ScheduleOptions): number {
  if (s.name === 'constant') return 1;
  let t = step;
  let period = s.totalSteps;
  if (s.warmRestarts) {
    period = Math.max(1, s.restartPeriodSteps);
    while (t >= period) {
      t -= period;
      period = Math.max(1, Math.round(period * s.restartMultiplier));
    }
  }
  const progress = period > 0 ? Math.min(1, t / period) : 1;
  return s.minLrFraction + (1 - s.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
