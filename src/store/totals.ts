import { sql } from 'drizzle-orm';
import type { StoreDb } from './db.js';

/**
 * Per-run totals on the `runs` row (schema 4): `energy_joules`, `energy_sources` and
 * `trained_samples`. They are what J/sample needs, kept so that `bnn compare` and
 * `bnn report` read one row per run instead of summing every energy sample and epoch row
 * (5.7 million of them on a 30,000-run store).
 *
 * The writers here (addEnergySamples, addEpochMetrics) refresh them in the same
 * transaction that writes the rows, from the run's rows, with the same expressions the
 * schema-4 migration (drizzle/0003_run_totals.sql) backfilled existing runs with: the
 * totals always equal what summing the rows gives, an epoch written again (a resumed run)
 * replaces its samples instead of adding them twice, and a store backfilled by the
 * migration holds exactly what live writes would have. A run's rows are few (one energy
 * sample per source, worker and epoch; one epoch row per epoch) and read through covering
 * indexes, so the refresh costs microseconds per write.
 *
 * Writers that insert rows with raw SQL (`bnn bench-store`'s generator) call
 * refreshRunTotals / refreshAllRunTotals themselves.
 */

/** Joules over all sources: each source summed by SQLite, then the per-source sums added. */
const ENERGY_JOULES = '(SELECT sum(j) FROM (SELECT sum(joules) AS j FROM energy_samples WHERE run_id = runs.id GROUP BY source))';
/** `nvml+rapl`-style label, in nvml, rapl, estimate order (ENERGY_SOURCES); NULL without samples. */
const ENERGY_SOURCES_LABEL =
  "(SELECT group_concat(source, '+' ORDER BY CASE source WHEN 'nvml' THEN 0 WHEN 'rapl' THEN 1 ELSE 2 END) " +
  'FROM (SELECT DISTINCT source FROM energy_samples WHERE run_id = runs.id))';
/** samples_per_s was computed as samples / epoch_time_s, so the product recovers each epoch's count. */
const TRAINED_SAMPLES = '(SELECT sum(round(samples_per_s * epoch_time_s)) FROM epoch_metrics WHERE run_id = runs.id)';

const SET_ENERGY = `energy_joules = ${ENERGY_JOULES}, energy_sources = ${ENERGY_SOURCES_LABEL}`;
const SET_SAMPLES = `trained_samples = ${TRAINED_SAMPLES}`;

/**
 * The statement that fills the totals of every run. The schema-4 migration backfills with
 * exactly this text (checked by test/store-totals.test.ts).
 */
export const BACKFILL_RUN_TOTALS_SQL = `UPDATE runs SET ${SET_ENERGY}, ${SET_SAMPLES}`;

/** Recomputes `energy_joules` and `energy_sources` of one run from its energy samples. */
export function refreshEnergyTotals(db: Pick<StoreDb, 'run'>, runId: string): void {
  db.run(sql`UPDATE runs SET ${sql.raw(SET_ENERGY)} WHERE id = ${runId}`);
}

/** Recomputes `trained_samples` of one run from its epoch metrics. */
export function refreshTrainedSamples(db: Pick<StoreDb, 'run'>, runId: string): void {
  db.run(sql`UPDATE runs SET ${sql.raw(SET_SAMPLES)} WHERE id = ${runId}`);
}

/** Recomputes all three totals of one run, or of every run when `runId` is omitted. */
export function refreshRunTotals(db: Pick<StoreDb, 'run'>, runId?: string): void {
  db.run(runId === undefined ? sql.raw(BACKFILL_RUN_TOTALS_SQL) : sql`${sql.raw(BACKFILL_RUN_TOTALS_SQL)} WHERE id = ${runId}`);
}
