import { ENERGY_SOURCES, type EnergySource, type RunRow } from '../store/schema.js';

/** A run's energy per training sample, as `energyPerSample` in the store computes it. */
export interface RunJoulesPerSample {
  joulesPerSample: number;
  /** Sources summed, e.g. `rapl`, `nvml+rapl`, `estimate`. */
  sources: EnergySource[];
  /** True when any part is an estimate (CPU time × assumed watts per core). */
  estimated: boolean;
}

/** The run-row totals J/sample is computed from (schema 4, kept by the store's writers). */
export type RunTotals = Pick<RunRow, 'energyJoules' | 'energySources' | 'trainedSamples'>;

/**
 * Joules per training sample from a run's totals: all its energy over all the samples its
 * epochs trained on. Undefined for a run without energy samples or without epoch metrics.
 */
export function joulesPerSampleOf(totals: RunTotals): RunJoulesPerSample | undefined {
  const { energyJoules: joules, energySources: label, trainedSamples: n } = totals;
  if (joules === null || label === null || n === null || !(n > 0)) return undefined;
  const present = new Set(label.split('+'));
  const sources = ENERGY_SOURCES.filter((s) => present.has(s));
  return { joulesPerSample: joules / n, sources, estimated: present.has('estimate') };
}

/** `nvml+rapl`-style label of the sources in a set of runs, in nvml, rapl, estimate order; null when none. */
export function sourceLabel(parts: Iterable<RunJoulesPerSample>): string | null {
  const present = new Set<EnergySource>();
  for (const p of parts) for (const s of p.sources) present.add(s);
  const ordered = ENERGY_SOURCES.filter((s) => present.has(s));
  return ordered.length === 0 ? null : ordered.join('+');
}
