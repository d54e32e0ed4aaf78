import { and, asc, eq, gte, lte, type SQL } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { missingParentError } from './fk.js';
import { stepMetrics, type NewStepMetricsRow, type StepMetricsRow } from './schema.js';
import { isoTime } from './time.js';

export type StepMetricsInput = Omit<NewStepMetricsRow, 'id' | 'runId' | 'at'> & { at?: Date };

/**
 * Records step metrics, many rows in one transaction. Writing a step again replaces it
 * (a run resumed from an earlier checkpoint recomputes those steps).
 */
export function addStepMetrics(db: StoreDb, runId: string, metrics: StepMetricsInput | readonly StepMetricsInput[]): void {
  const list = Array.isArray(metrics) ? (metrics as readonly StepMetricsInput[]) : [metrics as StepMetricsInput];
  if (list.length === 0) return;
  try {
    db.transaction((tx) => {
      for (const m of list) {
        const row = { ...m, runId, at: isoTime(m.at) };
        const { runId: _r, step: _s, ...set } = row;
        tx.insert(stepMetrics)
          .values(row)
          .onConflictDoUpdate({ target: [stepMetrics.runId, stepMetrics.step], set })
          .run();
      }
    });
  } catch (err) {
    throw missingParentError(db, err, runId);
  }
}

export interface StepRange {
  fromStep?: number;
  toStep?: number;
}

/** A run's step metrics in step order, optionally within [fromStep, toStep]. */
export function listStepMetrics(db: StoreDb, runId: string, range: StepRange = {}): StepMetricsRow[] {
  const where: SQL[] = [eq(stepMetrics.runId, runId)];
  if (range.fromStep !== undefined) where.push(gte(stepMetrics.step, range.fromStep));
  if (range.toStep !== undefined) where.push(lte(stepMetrics.step, range.toStep));
  return db
    .select()
    .from(stepMetrics)
    .where(and(...where))
    .orderBy(asc(stepMetrics.step))
    .all();
}
