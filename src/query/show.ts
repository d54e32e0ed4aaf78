import type { StoreDb } from '../store/db.js';
import { listCheckpoints } from '../store/checkpoints.js';
import { listEvents } from '../store/events.js';
import { listEpochMetrics } from '../store/metrics.js';
import { getRun } from '../store/runs.js';
import type { CheckpointRow, EpochMetricsRow, EventRow } from '../store/schema.js';
import { shownRuns, type ShownRun } from './liveness.js';

export interface RunDetail {
  /** Its row, with the status as shown (ABANDONED where its owner process is gone). */
  run: ShownRun;
  /** In epoch order. */
  epochs: EpochMetricsRow[];
  /** Oldest first. */
  checkpoints: CheckpointRow[];
  /** In the order they happened. */
  events: EventRow[];
}

/** Everything recorded about one run, by id or unique id prefix (RunNotFoundError otherwise). */
export function runDetail(db: StoreDb, idOrPrefix: string): RunDetail {
  const run = getRun(db, idOrPrefix);
  return {
    run: shownRuns(db, [run])[0]!,
    epochs: listEpochMetrics(db, run.id),
    checkpoints: listCheckpoints(db, run.id),
    events: listEvents(db, run.id),
  };
}
