import { and, inArray, sql, type SQL } from 'drizzle-orm';
import type { StoreDb } from '../store/db.js';
import { ENERGY_SOURCES, energySamples, epochMetrics, runs, type EnergySource } from '../store/schema.js';

/** A run's energy per training sample, as `energyPerSample` in the store computes it. */
export interface RunJoulesPerSample {
  joulesPerSample: number;
  /** Sources summed, e.g. `rapl`, `nvml+rapl`, `estimate`. */
  sources: EnergySource[];
  /** True when any part is an estimate (CPU time × assumed watts per core). */
  estimated: boolean;
}

/**
 * Joules per training sample of every run matching `where` (conditions on `runs`) that has
 * energy samples and epoch metrics: all its energy over all the samples its epochs trained
 * on (samples_per_s × epoch_time_s, as the store does). Two grouped queries, whatever the
 * number of runs; runs without energy cost nothing.
 */
export function joulesPerSampleByRun(db: StoreDb, where: readonly SQL[]): Map<string, RunJoulesPerSample> {
  const selected = db.select({ id: runs.id }).from(runs).where(and(...where));
  // `.values()` skips drizzle's row objects (about a tenth of the time at 30,000 runs, `bnn bench-store`).
  const energy = db
    .select({ runId: energySamples.runId, source: energySamples.source, joules: sql<number>`sum(${energySamples.joules})` })
    .from(energySamples)
    .where(inArray(energySamples.runId, selected))
    .groupBy(energySamples.runId, energySamples.source)
    .values() as unknown as [string, EnergySource, number][];
  if (energy.length === 0) return new Map();
  // Every run of `selected`, not only those with energy: a second IN-subquery over
  // energy_samples would cost more than the few runs without energy it saves.
  const samples = db
    .select({ runId: epochMetrics.runId, n: sql<number>`sum(round(${epochMetrics.samplesPerS} * ${epochMetrics.epochTimeS}))` })
    .from(epochMetrics)
    .where(inArray(epochMetrics.runId, selected))
    .groupBy(epochMetrics.runId)
    .values() as unknown as [string, number][];
  const samplesByRun = new Map(samples);
  const joules = new Map<string, { total: number; sources: Set<EnergySource> }>();
  for (const [runId, source, j] of energy) {
    const entry = joules.get(runId) ?? { total: 0, sources: new Set<EnergySource>() };
    entry.total += j;
    entry.sources.add(source);
    joules.set(runId, entry);
  }
  const out = new Map<string, RunJoulesPerSample>();
  for (const [runId, e] of joules) {
    const n = samplesByRun.get(runId);
    if (n === undefined || !(n > 0)) continue;
    const sources = ENERGY_SOURCES.filter((s) => e.sources.has(s));
    out.set(runId, { joulesPerSample: e.total / n, sources, estimated: e.sources.has('estimate') });
  }
  return out;
}

/** `nvml+rapl`-style label of the sources in a set of runs, in nvml, rapl, estimate order; null when none. */
export function sourceLabel(parts: Iterable<RunJoulesPerSample>): string | null {
  const present = new Set<EnergySource>();
  for (const p of parts) for (const s of p.sources) present.add(s);
  const ordered = ENERGY_SOURCES.filter((s) => present.has(s));
  return ordered.length === 0 ? null : ordered.join('+');
}
