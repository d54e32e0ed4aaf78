import { eq } from 'drizzle-orm';
import type { StoreDb } from './db.js';
import { isForeignKeyViolation, RunNotFoundError, WorkerNotFoundError } from './errors.js';
import { runs, workers } from './schema.js';

/**
 * Turns a foreign-key violation on a row naming a run and maybe a worker into the error
 * for whichever of them is missing; any other error is returned unchanged.
 */
export function missingParentError(db: StoreDb, err: unknown, runId: string | null | undefined, workerId?: string | null): unknown {
  if (!isForeignKeyViolation(err)) return err;
  if (runId && !db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)).get()) return new RunNotFoundError(runId);
  if (workerId && !db.select({ id: workers.id }).from(workers).where(eq(workers.id, workerId)).get()) {
    return new WorkerNotFoundError(workerId);
  }
  return err;
}
