import type { EnergySource } from '../store/schema.js';

export type { EnergySource };

/** Energy one source measured (or estimated) over one interval. */
export interface EnergyReading {
  source: EnergySource;
  /** Energy since the previous reading of this source. */
  joules: number;
  /** Mean power over the interval; null when the interval was empty. */
  watts: number | null;
  intervalS: number;
  /** Source specifics (domains, GPUs, the estimate's assumption), stored as the sample's detail. */
  detail: Record<string, unknown>;
}

/** A source that could not be used, and why. */
export interface Unavailable {
  source: EnergySource;
  reason: string;
}

/**
 * One energy source. `reset` takes the baseline, `poll` folds a reading into the running
 * total (called on an interval, so counters are read before they can wrap twice),
 * `take` polls and returns the energy since the previous `take` (or `reset`).
 */
export interface EnergyProbe {
  readonly source: EnergySource;
  reset(nowMs: number): Promise<void>;
  poll(nowMs: number): Promise<void>;
  take(nowMs: number): Promise<EnergyReading>;
}
