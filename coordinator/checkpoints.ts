// Which checkpoint a resumed run continues from: the newest one whose file still has the
// sha256 recorded in the store, wherever it lives (a local file or the NATS object store). A file
// that fails is refused, named, and the previous one tried.
import { CheckpointError, type CheckpointStores } from '../src/checkpoint/index.js';
import { listCheckpoints, type StoreDb } from '../src/store/index.js';
import type { CheckpointRow } from '../src/store/schema.js';

export interface RefusedCheckpoint {
  path: string;
  step: number;
  /** Why, naming the file (e.g. `checkpoint <file>: sha256 mismatch: expected …, file has …`). */
  problem: string;
}

export interface CheckpointChoice {
  /** The newest good checkpoint; null when the run has none (it restarts from step 0). */
  chosen: CheckpointRow | null;
  /** Newer checkpoints refused on the way, newest first. */
  refused: RefusedCheckpoint[];
}

/** Reads (and hashes) a run's checkpoints newest first until one matches its recorded sha256. */
export async function chooseCheckpoint(db: StoreDb, runId: string, stores: CheckpointStores): Promise<CheckpointChoice> {
  const rows = listCheckpoints(db, runId).sort((a, b) => b.step - a.step || b.id - a.id);
  const refused: RefusedCheckpoint[] = [];
  for (const row of rows) {
    try {
      await stores.readCheckpoint(row.path, row.sha256);
      return { chosen: row, refused };
    } catch (err) {
      // unreadable, hash mismatch or a malformed file: all CheckpointError, naming the file
      if (!(err instanceof CheckpointError)) throw err;
      refused.push({ path: row.path, step: row.step, problem: err.message });
    }
  }
  return { chosen: null, refused };
}
