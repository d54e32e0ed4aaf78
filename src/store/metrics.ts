import { asc, eq } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError } from './errors.js';
import { refreshTrainedSamples } from './totals.js';
import { epochMetrics, type EpochMetricsRow, type NewEpochMetricsRow } from './schema.js';

export type EpochMetricsInput = Omit<NewEpochMetricsRow, 'id' | 'runId'>;

/**
 * Records one epoch's metrics. Writing an epoch again replaces it: a run resumed from a
 * checkpoint taken before the first write recomputes that epoch (identically). The run's
 * `trained_samples` total is refreshed in the same transaction (src/store/totals.ts).
 */
export function addEpochMetrics(db: StoreDb, runId: string, metrics: EpochMetricsInput): EpochMetricsRow {
  const { epoch: _epoch, ...rest } = metrics;
  try {
    return db.transaction((tx) => {
      const row = tx
        .insert(epochMetrics)
        .values({ ...metrics, runId })
        .onConflictDoUpdate({ target: [epochMetrics.runId, epochMetrics.epoch], set: rest })
        .returning()
        .get();
      refreshTrainedSamples(tx, runId);
      return row;
    });
  } catch (err) {
    if (isForeignKeyViolation(err)) throw new RunNotFoundError(runId);
    throw err;
  }
}

/** A run's epoch metrics in epoch order. */
export function listEpochMetrics(db: StoreDb, runId: string): EpochMetricsRow[] {
  return db.select().from(epochMetrics).where(eq(epochMetrics.runId, runId)).orderBy(asc(epochMetrics.epoch)).all();
}
