import { and, asc, eq, inArray, isNotNull } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError } from './errors.js';
import { completedRunConditions, type RunFilter } from './run-queries.js';
import { refreshTrainedSamples } from './totals.js';
import { epochMetrics, runs, type EpochMetricsRow, type NewEpochMetricsRow } from './schema.js';

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

/** Ids of the COMPLETED runs matching the filter that have a test accuracy in some epoch, in no particular order. */
export function runsWithTestAccuracy(db: StoreDb, filter: RunFilter): string[] {
  const where = completedRunConditions(filter);
  return db
    .selectDistinct({ runId: epochMetrics.runId })
    .from(epochMetrics)
    .where(
      and(
        inArray(
          epochMetrics.runId,
          db
            .select({ id: runs.id })
            .from(runs)
            .where(and(...where)),
        ),
        isNotNull(epochMetrics.testAcc),
      ),
    )
    .all()
    .map((r) => r.runId);
}

/** Test accuracy per evaluated epoch of these runs, by run id then epoch. */
export function testAccuracyCurves(db: StoreDb, runIds: readonly string[]): { runId: string; epoch: number; testAcc: number }[] {
  return db
    .select({ runId: epochMetrics.runId, epoch: epochMetrics.epoch, testAcc: epochMetrics.testAcc })
    .from(epochMetrics)
    .where(and(inArray(epochMetrics.runId, runIds), isNotNull(epochMetrics.testAcc)))
    .orderBy(asc(epochMetrics.runId), asc(epochMetrics.epoch))
    .all()
    .map((p) => ({ runId: p.runId, epoch: p.epoch, testAcc: p.testAcc! }));
}

/**
 * A run's results as its epochs are recorded, for `finishRun`: the final and best test
 * accuracy and the training throughput over the epochs completed. The embedded trainer's sink
 * and the coordinator record a run's epochs through one of these.
 */
export class EpochTally {
  finalTestAcc: number | null;
  bestTestAcc: number | null;
  private trainSeconds = 0;
  private samples = 0;

  /** `from`: the results of the epochs a resumed run keeps. */
  constructor(from: { finalTestAcc: number | null; bestTestAcc: number | null } = { finalTestAcc: null, bestTestAcc: null }) {
    this.finalTestAcc = from.finalTestAcc;
    this.bestTestAcc = from.bestTestAcc;
  }

  /** Records one epoch (addEpochMetrics) and counts it. */
  record(db: StoreDb, runId: string, metrics: EpochMetricsInput): EpochMetricsRow {
    const row = addEpochMetrics(db, runId, metrics);
    this.count(metrics);
    return row;
  }

  /** Counts one epoch without writing it (a caller that writes it later, e.g. through a StoreWriteQueue). */
  count(metrics: EpochMetricsInput): void {
    if (metrics.testAcc !== null && metrics.testAcc !== undefined) {
      this.finalTestAcc = metrics.testAcc;
      this.bestTestAcc = Math.max(this.bestTestAcc ?? 0, metrics.testAcc);
    }
    this.samples += (metrics.samplesPerS ?? 0) * metrics.epochTimeS;
    this.trainSeconds += metrics.epochTimeS;
  }

  /** Training samples per second over the epochs recorded here; null before the first. */
  get samplesPerS(): number | null {
    return this.trainSeconds > 0 ? this.samples / this.trainSeconds : null;
  }
}
