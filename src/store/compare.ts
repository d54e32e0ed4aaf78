import { and, inArray, sql } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { completedRunConditions, type RunFilter } from './run-queries.js';
import { energySamples, epochMetrics, runs, type RunRow } from './schema.js';

/** The run-row totals J/sample is computed from (schema 4, kept by the store's writers; src/store/totals.ts). */
const RUN_TOTALS_COLUMNS = {
  energyJoules: runs.energyJoules,
  energySources: runs.energySources,
  trainedSamples: runs.trainedSamples,
} as const;

const COMPARE_COLUMNS = {
  id: runs.id,
  createdAt: runs.createdAt,
  precision: runs.precision,
  model: runs.model,
  dataset: runs.dataset,
  name: runs.name,
  finalTestAcc: runs.finalTestAcc,
  bestTestAcc: runs.bestTestAcc,
  samplesPerS: runs.samplesPerS,
  wallTimeS: runs.wallTimeS,
  modelSizeBytes: runs.modelSizeBytes,
  packedSizeBytes: runs.packedSizeBytes,
  // J/sample from the run's totals (schema 4), not from its energy samples and epoch rows.
  ...RUN_TOTALS_COLUMNS,
} as const satisfies Partial<Record<keyof RunRow, unknown>>;

/** The columns of a run that `bnn compare` reads. */
export type CompareRow = Pick<RunRow, keyof typeof COMPARE_COLUMNS>;
const COMPARE_KEYS = Object.keys(COMPARE_COLUMNS) as (keyof typeof COMPARE_COLUMNS)[];

/** The statement compareRows reads runs with (for `toSQL()` and query plans). */
export function compareStatement(db: StoreDb, filter: RunFilter) {
  // Only the columns compared: never the config JSON, which is most of a run row's bytes.
  return db
    .select(COMPARE_COLUMNS)
    .from(runs)
    .where(and(...completedRunConditions(filter)))
    .orderBy(runs.createdAt, runs.id);
}

/**
 * The COMPLETED runs matching the filter, in creation order, with the columns compared. Read
 * as arrays (`.values()`) and made into objects here: every column is a plain number or text,
 * so drizzle's per-column decoding only costs time (about half the query's at 27,000 runs,
 * `bnn bench-store`).
 */
export function compareRows(db: StoreDb, filter: RunFilter): CompareRow[] {
  const arrays = compareStatement(db, filter).values() as unknown as unknown[][];
  return arrays.map((values) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < COMPARE_KEYS.length; i++) row[COMPARE_KEYS[i]!] = values[i];
    return row as CompareRow;
  });
}

// J/sample as schema 3's compare computed it, summing every energy and epoch row of the runs
// compared: what the per-run totals replaced, timed beside them by `bnn bench-store`.

/** Joules by run and source of the COMPLETED runs matching the filter. */
export function energyRowsStatement(db: StoreDb, filter: RunFilter) {
  const selected = db
    .select({ id: runs.id })
    .from(runs)
    .where(and(...completedRunConditions(filter)));
  return db
    .select({ runId: energySamples.runId, source: energySamples.source, joules: sql<number>`sum(${energySamples.joules})` })
    .from(energySamples)
    .where(inArray(energySamples.runId, selected))
    .groupBy(energySamples.runId, energySamples.source);
}

/** Runs with a J/sample among the COMPLETED runs matching the filter, computed from the rows (two grouped scans). */
export function joulesPerSampleFromRows(db: StoreDb, filter: RunFilter): number {
  const selected = db
    .select({ id: runs.id })
    .from(runs)
    .where(and(...completedRunConditions(filter)));
  const energy = energyRowsStatement(db, filter).values() as unknown as [string, string, number][];
  const samples = new Map(
    db
      .select({ runId: epochMetrics.runId, n: sql<number>`sum(round(${epochMetrics.samplesPerS} * ${epochMetrics.epochTimeS}))` })
      .from(epochMetrics)
      .where(inArray(epochMetrics.runId, selected))
      .groupBy(epochMetrics.runId)
      .values() as unknown as [string, number][],
  );
  const joules = new Map<string, number>();
  for (const [runId, , j] of energy) joules.set(runId, (joules.get(runId) ?? 0) + j);
  let n = 0;
  for (const [runId, j] of joules) if ((samples.get(runId) ?? 0) > 0 && Number.isFinite(j)) n++;
  return n;
}
