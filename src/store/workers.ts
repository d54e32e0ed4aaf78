import { asc, eq } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { WorkerNotFoundError } from './errors.js';
import { workers, type WorkerRow } from './schema.js';
import { isoTime } from './time.js';

export interface WorkerInput {
  id: string;
  hostname: string;
  at?: Date;
}

/** Records a worker's registration: inserted on first sight, else `last_seen` (and hostname) updated. */
export function upsertWorker(db: StoreDb, input: WorkerInput): WorkerRow {
  const at = isoTime(input.at);
  return db.transaction((tx) =>
    tx
      .insert(workers)
      .values({ id: input.id, hostname: input.hostname, firstSeen: at, lastSeen: at })
      .onConflictDoUpdate({ target: workers.id, set: { hostname: input.hostname, lastSeen: at } })
      .returning()
      .get(),
  );
}

/** Moves a worker's `last_seen` forward (a heartbeat); throws WorkerNotFoundError for an unknown id. */
export function touchWorker(db: StoreDb, id: string, at: Date = new Date()): WorkerRow {
  const row = db
    .update(workers)
    .set({ lastSeen: isoTime(at) })
    .where(eq(workers.id, id))
    .returning()
    .get();
  if (!row) throw new WorkerNotFoundError(id);
  return row;
}

export function getWorker(db: StoreDb, id: string): WorkerRow | undefined {
  return db.select().from(workers).where(eq(workers.id, id)).get();
}

/** Every worker ever seen, by id. */
export function listWorkers(db: StoreDb): WorkerRow[] {
  return db.select().from(workers).orderBy(asc(workers.id)).all();
}
