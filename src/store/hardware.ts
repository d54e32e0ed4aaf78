import { and, desc, eq, isNull, type SQL } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { missingParentError } from './fk.js';
import { hardwareSnapshots, type HardwareSnapshotRow, type NewHardwareSnapshotRow } from './schema.js';
import { isoTime } from './time.js';

/** What a host looks like: the columns of `hardware_snapshots` that describe it. */
export type HardwareColumns = Omit<NewHardwareSnapshotRow, 'id' | 'workerId' | 'runId' | 'at'>;

export interface RecordHardwareInput {
  hardware: HardwareColumns;
  /** Omit for the embedded trainer. */
  workerId?: string | null;
  /** Omit for a snapshot not tied to a run (taken at worker registration). */
  runId?: string | null;
  at?: Date;
}

/** Stores one hardware snapshot. Unknown run or worker: RunNotFoundError / WorkerNotFoundError. */
export function recordHardware(db: StoreDb, input: RecordHardwareInput): HardwareSnapshotRow {
  const row = { ...input.hardware, workerId: input.workerId ?? null, runId: input.runId ?? null, at: isoTime(input.at) };
  try {
    return db.transaction((tx) => tx.insert(hardwareSnapshots).values(row).returning().get());
  } catch (err) {
    throw missingParentError(db, err, row.runId, row.workerId);
  }
}

export interface HardwareFilter {
  runId?: string;
  /** A worker id, or null for the embedded trainer's snapshots. */
  workerId?: string | null;
}

/** Snapshots matching the filter, oldest first. */
export function listHardware(db: StoreDb, filter: HardwareFilter = {}): HardwareSnapshotRow[] {
  return db
    .select()
    .from(hardwareSnapshots)
    .where(and(...hardwareWhere(filter)))
    .orderBy(hardwareSnapshots.at, hardwareSnapshots.id)
    .all();
}

/** The newest snapshot matching the filter. */
export function latestHardware(db: StoreDb, filter: HardwareFilter = {}): HardwareSnapshotRow | undefined {
  return db
    .select()
    .from(hardwareSnapshots)
    .where(and(...hardwareWhere(filter)))
    .orderBy(desc(hardwareSnapshots.at), desc(hardwareSnapshots.id))
    .limit(1)
    .get();
}

function hardwareWhere(filter: HardwareFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.runId !== undefined) where.push(eq(hardwareSnapshots.runId, filter.runId));
  if (filter.workerId === null) where.push(isNull(hardwareSnapshots.workerId));
  else if (filter.workerId !== undefined) where.push(eq(hardwareSnapshots.workerId, filter.workerId));
  return where;
}
