import { desc, eq } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError } from './errors.js';
import { checkpoints, type CheckpointRow } from './schema.js';
import { isoTime } from './time.js';

export interface CheckpointInput {
  runId: string;
  epoch: number;
  /** Optimizer steps completed since the start of the run. */
  step: number;
  path: string;
  sha256: string;
  bytes: number;
  now?: Date;
}

/** Records a checkpoint file already written (and fsynced) to disk. */
export function addCheckpoint(db: StoreDb, input: CheckpointInput): CheckpointRow {
  const { now, ...row } = input;
  try {
    return db.transaction((tx) =>
      tx
        .insert(checkpoints)
        .values({ ...row, createdAt: isoTime(now) })
        .returning()
        .get(),
    );
  } catch (err) {
    if (isForeignKeyViolation(err)) throw new RunNotFoundError(input.runId);
    throw err;
  }
}

/** The run's checkpoint with the most steps (the newest on ties); undefined when none. */
export function latestCheckpoint(db: StoreDb, runId: string): CheckpointRow | undefined {
  return db
    .select()
    .from(checkpoints)
    .where(eq(checkpoints.runId, runId))
    .orderBy(desc(checkpoints.step), desc(checkpoints.id))
    .limit(1)
    .get();
}

/** A run's checkpoints, oldest first. */
export function listCheckpoints(db: StoreDb, runId: string): CheckpointRow[] {
  return db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(checkpoints.step, checkpoints.id).all();
}
