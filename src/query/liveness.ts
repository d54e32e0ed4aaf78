/**
 * ABANDONED: a run recorded as PENDING or RUNNING whose owner process (`bnn train`, or the
 * coordinator of a cluster run) is gone, so nothing will ever finish it. Derived when a
 * command reads the store, never written: whether a process runs changes without any write,
 * the query commands open the store read-only, and a stored ABANDONED would be wrong the
 * moment another host (which cannot be checked from here) read it. What `bnn sql` and other
 * SQLite tools see is the stored status with the owner columns (owner_host, owner_pid,
 * owner_start). An owner on another host cannot be checked: such a run stays RUNNING.
 */
import type { StoreDb } from '../store/db.js';
import type { ShownStatus } from '../store/run-queries.js';
import { latestEventOfKind } from '../store/events.js';
import { activeRunOwners, runOwner } from '../store/runs.js';
import type { RunRow, RunStatus } from '../store/schema.js';
import { DEFAULT_STORE_PATH } from './open.js';
import { ownerVerdict, type OwnerVerdict } from '../util/process-owner.js';

/** What the query commands show of a run: its row, with the status as shown. */
export interface ShownRun extends Omit<RunRow, 'status'> {
  status: ShownStatus;
  /** The status in the database (RUNNING for an ABANDONED run). */
  storedStatus: RunStatus;
  /** For a PENDING or RUNNING run with a recorded owner: whether that process still runs; null otherwise. */
  liveness: OwnerVerdict | null;
  /** A PENDING run queued on a coordinator: why it waits, as last recorded (`waiting for 4 workers, 2 idle`); null otherwise. */
  waiting: string | null;
}

/** The owner's verdict for a PENDING or RUNNING run with a recorded owner; null for any other run. */
export function runLiveness(row: Pick<RunRow, 'status' | 'ownerHost' | 'ownerPid' | 'ownerStart'>): OwnerVerdict | null {
  if (row.status !== 'PENDING' && row.status !== 'RUNNING') return null;
  const owner = runOwner(row);
  return owner === null ? null : ownerVerdict(owner);
}

export function shownRun(row: RunRow, waiting: string | null = null): ShownRun {
  const liveness = runLiveness(row);
  const status = liveness?.state === 'gone' ? 'ABANDONED' : row.status;
  return { ...row, status, storedStatus: row.status, liveness, waiting: status === 'PENDING' ? waiting : null };
}

/** `shownRun` of each row, with each queued run's reason for waiting (its latest `waiting` event). */
export function shownRuns(db: StoreDb, rows: readonly RunRow[]): ShownRun[] {
  const pending = rows.filter((r) => r.status === 'PENDING').map((r) => r.id);
  const waiting = latestEventOfKind(db, pending, 'waiting');
  return rows.map((r) => {
    const reason = waiting.get(r.id)?.detail?.reason;
    return shownRun(r, typeof reason === 'string' ? reason : null);
  });
}

/** Ids of the runs shown as ABANDONED now. */
export function abandonedRunIds(db: StoreDb): string[] {
  return activeRunOwners(db)
    .filter((r) => runLiveness(r)?.state === 'gone')
    .map((r) => r.id);
}

/** Whether a status filter needs the ABANDONED runs' ids (it names ABANDONED, or a status they are stored with). */
export function filterNeedsAbandoned(statuses: readonly ShownStatus[] | undefined): boolean {
  return statuses?.some((s) => s === 'ABANDONED' || s === 'PENDING' || s === 'RUNNING') ?? false;
}

/**
 * What ABANDONED means for this run and how to continue it: `recorded as RUNNING, but no
 * process 4242 on node-a; bnn resume <id> continues it` (with `--store` unless the default).
 */
export function abandonedNote(run: Pick<ShownRun, 'id' | 'storedStatus' | 'liveness'>, storePath: string = DEFAULT_STORE_PATH): string {
  const store = storePath === DEFAULT_STORE_PATH ? '' : ` --store ${storePath}`;
  return `recorded as ${run.storedStatus}, but ${run.liveness?.why ?? 'its owner process is gone'}; bnn resume ${run.id}${store} continues it`;
}
