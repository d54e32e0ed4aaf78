import { and, asc, desc, eq, inArray, isNotNull } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError } from './errors.js';
import { checkpoints, epochMetrics, type CheckpointRow } from './schema.js';
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

/**
 * Records a checkpoint file already written (and fsynced) to disk. A row of the run naming the same
 * file (a step written again after a resume from an earlier checkpoint) is replaced: the file holds
 * the new bytes, and the old row's sha256 no longer describes it.
 */
export function addCheckpoint(db: StoreDb, input: CheckpointInput): CheckpointRow {
  const { now, ...row } = input;
  try {
    return db.transaction((tx) => {
      tx.delete(checkpoints)
        .where(and(eq(checkpoints.runId, row.runId), eq(checkpoints.path, row.path)))
        .run();
      return tx
        .insert(checkpoints)
        .values({ ...row, createdAt: isoTime(now) })
        .returning()
        .get();
    });
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

/**
 * The checkpoints retention keeps: the newest `keep` (by step, then id) and the epoch checkpoint
 * of the epoch with the best test accuracy (the first checkpoint with that many epochs completed;
 * the earliest epoch on ties). Everything else is returned by `checkpointsPastRetention`.
 */
export function checkpointsPastRetention(db: StoreDb, runId: string, keep: number): CheckpointRow[] {
  const rows = listCheckpoints(db, runId).sort((a, b) => b.step - a.step || b.id - a.id);
  const kept = new Set(rows.slice(0, Math.max(1, keep)).map((r) => r.id));
  const best = db
    .select({ epoch: epochMetrics.epoch })
    .from(epochMetrics)
    .where(and(eq(epochMetrics.runId, runId), isNotNull(epochMetrics.testAcc)))
    .orderBy(desc(epochMetrics.testAcc), asc(epochMetrics.epoch))
    .limit(1)
    .get();
  if (best) {
    const atBest = rows.filter((r) => r.epoch === best.epoch).sort((a, b) => a.step - b.step || b.id - a.id)[0];
    if (atBest) kept.add(atBest.id);
  }
  return rows.filter((r) => !kept.has(r.id)).reverse();
}

/** Deletes `rows` from the store (one transaction); returns their files that no remaining row names. */
export function removeCheckpointRows(db: StoreDb, rows: readonly CheckpointRow[]): string[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  db.transaction((tx) => {
    for (let i = 0; i < ids.length; i += 500)
      tx.delete(checkpoints)
        .where(inArray(checkpoints.id, ids.slice(i, i + 500)))
        .run();
  });
  const runIds = [...new Set(rows.map((r) => r.runId))];
  const stillNamed = new Set(
    db
      .select({ path: checkpoints.path })
      .from(checkpoints)
      .where(inArray(checkpoints.runId, runIds))
      .all()
      .map((r) => r.path),
  );
  return [...new Set(rows.map((r) => r.path))].filter((p) => !stillNamed.has(p));
}

/** What removing checkpoints did: the rows removed, bytes freed, and files that could not be deleted. */
export interface PrunedCheckpoints {
  removed: CheckpointRow[];
  bytesFreed: number;
  failed: { location: string; problem: string }[];
}

/**
 * Removes `rows` (checkpoints of one run) from the store, then deletes their files through
 * `deleteFile` (which returns the bytes it freed), except files a remaining row still names (a
 * step written again after a resume). Rows go first: a resume never picks a file being deleted; a
 * file left by a crash in between is an orphan `bnn gc --orphans` finds.
 */
export async function removeCheckpoints(
  db: StoreDb,
  rows: readonly CheckpointRow[],
  deleteFile: (location: string) => Promise<number>,
): Promise<PrunedCheckpoints> {
  if (rows.length === 0) return { removed: [], bytesFreed: 0, failed: [] };
  let bytesFreed = 0;
  const failed: PrunedCheckpoints['failed'] = [];
  for (const location of removeCheckpointRows(db, rows)) {
    try {
      bytesFreed += await deleteFile(location);
    } catch (err) {
      failed.push({ location, problem: (err as Error).message });
    }
  }
  return { removed: [...rows], bytesFreed, failed };
}

/** Every location a checkpoint row names (any run). */
export function allCheckpointPaths(db: StoreDb): Set<string> {
  return new Set(
    db
      .select({ path: checkpoints.path })
      .from(checkpoints)
      .all()
      .map((r) => r.path),
  );
}
