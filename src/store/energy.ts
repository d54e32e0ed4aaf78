import { and, asc, eq, isNotNull, sql } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { missingParentError } from './fk.js';
import { ENERGY_SOURCES, energySamples, epochMetrics, type EnergySampleRow, type EnergySource } from './schema.js';
import { isoTime } from './time.js';
import { refreshEnergyTotals } from './totals.js';

export interface EnergySampleInput {
  runId: string;
  /** Omit for the embedded trainer. */
  workerId?: string | null;
  /** Epoch the interval ended in; omit when not tied to one. */
  epoch?: number | null;
  /** End of the interval. */
  at?: Date;
  /** Mean power over the interval. */
  watts?: number | null;
  /** Energy over the interval (not cumulative). */
  joules: number;
  source: EnergySource;
  detail?: Record<string, unknown>;
}

/** Stores one energy sample. Unknown run or worker: RunNotFoundError / WorkerNotFoundError. */
export function addEnergySample(db: StoreDb, input: EnergySampleInput): EnergySampleRow {
  return addEnergySamples(db, [input])[0]!;
}

/**
 * Stores several energy samples in one transaction (all or none), refreshing each run's
 * energy totals on its `runs` row in that transaction (src/store/totals.ts).
 */
export function addEnergySamples(db: StoreDb, inputs: readonly EnergySampleInput[]): EnergySampleRow[] {
  const rows = inputs.map((i) => {
    if (!Number.isFinite(i.joules) || i.joules < 0)
      throw new RangeError(`energy sample joules must be a finite number >= 0, got ${i.joules}`);
    if (!ENERGY_SOURCES.includes(i.source)) {
      throw new RangeError(`energy sample source must be one of ${ENERGY_SOURCES.join(', ')}, got "${String(i.source)}"`);
    }
    return {
      runId: i.runId,
      workerId: i.workerId ?? null,
      epoch: i.epoch ?? null,
      at: isoTime(i.at),
      watts: i.watts ?? null,
      joules: i.joules,
      source: i.source,
      detail: i.detail ?? {},
    };
  });
  try {
    return db.transaction((tx) => {
      const inserted = rows.map((row) => tx.insert(energySamples).values(row).returning().get());
      for (const runId of new Set(rows.map((r) => r.runId))) refreshEnergyTotals(tx, runId);
      return inserted;
    });
  } catch (err) {
    for (const row of rows) {
      const named = missingParentError(db, err, row.runId, row.workerId);
      if (named !== err) throw named;
    }
    throw err;
  }
}

/** A run's energy samples in time order. */
export function listEnergySamples(db: StoreDb, runId: string): EnergySampleRow[] {
  return db.select().from(energySamples).where(eq(energySamples.runId, runId)).orderBy(asc(energySamples.at), asc(energySamples.id)).all();
}

/** Joules by source, and how to label them wherever they are shown. */
export interface EnergyTotal {
  joules: number;
  bySource: Partial<Record<EnergySource, number>>;
  /** Sources present, `+`-joined in nvml, rapl, estimate order: `rapl`, `nvml+rapl`, `estimate`. */
  source: string;
  /** True when any part is an estimate (CPU time × assumed watts per core), not a measurement. */
  estimated: boolean;
}

export interface RunEnergy extends EnergyTotal {
  runId: string;
  /** Rows summed. */
  sampleRows: number;
}

/** Total energy of a run over all workers, epochs and sources. */
export function energyByRun(db: StoreDb, runId: string): RunEnergy {
  const rows = db
    .select({ source: energySamples.source, joules: sql<number>`sum(${energySamples.joules})`, n: sql<number>`count(*)` })
    .from(energySamples)
    .where(eq(energySamples.runId, runId))
    .groupBy(energySamples.source)
    .all();
  return { runId, ...total(rows), sampleRows: rows.reduce((n, r) => n + r.n, 0) };
}

export interface EpochEnergy extends EnergyTotal {
  epoch: number;
  /** Training samples in the epoch (from epoch_metrics), null where the epoch has no metrics. */
  samples: number | null;
  joulesPerSample: number | null;
}

/** Energy per epoch (samples tied to an epoch only), with joules per training sample. */
export function energyPerEpoch(db: StoreDb, runId: string): EpochEnergy[] {
  const rows = db
    .select({ epoch: energySamples.epoch, source: energySamples.source, joules: sql<number>`sum(${energySamples.joules})` })
    .from(energySamples)
    .where(and(eq(energySamples.runId, runId), isNotNull(energySamples.epoch)))
    .groupBy(energySamples.epoch, energySamples.source)
    .orderBy(asc(energySamples.epoch))
    .all();
  const samples = samplesByEpoch(db, runId);
  const byEpoch = new Map<number, { source: EnergySource; joules: number }[]>();
  for (const r of rows) {
    const list = byEpoch.get(r.epoch!) ?? [];
    list.push(r);
    byEpoch.set(r.epoch!, list);
  }
  return [...byEpoch].map(([epoch, list]) => {
    const t = total(list);
    const n = samples.get(epoch) ?? null;
    return { epoch, ...t, samples: n, joulesPerSample: n ? t.joules / n : null };
  });
}

export interface SampleEnergy extends EnergyTotal {
  /** Training samples processed by the run (sum over epochs with metrics). */
  samples: number;
  joulesPerSample: number;
}

/**
 * The run's energy per training sample: all its energy over all the samples it trained on.
 * Undefined when no sample count is known (no epoch metrics and no `samples` given).
 * Pass `samples` where the epoch metrics do not tell the whole count (runs without them).
 */
export function energyPerSample(db: StoreDb, runId: string, options: { samples?: number } = {}): SampleEnergy | undefined {
  const n = options.samples ?? [...samplesByEpoch(db, runId).values()].reduce((a, b) => a + b, 0);
  if (!(n > 0)) return undefined;
  const { runId: _id, sampleRows: _rows, ...t } = energyByRun(db, runId);
  return { ...t, samples: n, joulesPerSample: t.joules / n };
}

/** Training samples per epoch, recovered from the epoch's throughput and duration. */
function samplesByEpoch(db: StoreDb, runId: string): Map<number, number> {
  const rows = db
    .select({ epoch: epochMetrics.epoch, samplesPerS: epochMetrics.samplesPerS, epochTimeS: epochMetrics.epochTimeS })
    .from(epochMetrics)
    .where(eq(epochMetrics.runId, runId))
    .all();
  // samples_per_s was computed as samples / epoch_time_s, so the product recovers the count.
  return new Map(rows.map((r) => [r.epoch, Math.round(r.samplesPerS * r.epochTimeS)]));
}

function total(rows: readonly { source: EnergySource; joules: number }[]): EnergyTotal {
  const bySource: Partial<Record<EnergySource, number>> = {};
  for (const r of rows) bySource[r.source] = (bySource[r.source] ?? 0) + r.joules;
  const present = ENERGY_SOURCES.filter((s) => bySource[s] !== undefined);
  return {
    joules: present.reduce((a, s) => a + bySource[s]!, 0),
    bySource,
    source: present.length === 0 ? 'none' : present.join('+'),
    estimated: bySource.estimate !== undefined,
  };
}
