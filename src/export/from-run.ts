// Rebuilds a recorded run's model from its latest good checkpoint.
import { buildModel, type Model } from '../bnn/models.js';
import { readSafetensors, CheckpointError, type SafetensorsFile } from '../checkpoint/index.js';
import type { Normalization } from '../data/index.js';
import { getRun, listCheckpoints, type StoreDb } from '../store/index.js';
import { modelSpecFromConfig } from '../train/spec.js';
import { applyCheckpoint, type CheckpointMeta } from '../train/checkpoint.js';
import { UserError } from '../util/errors.js';

export class NoCheckpointError extends UserError {
  constructor(runId: string, detail: string) {
    super(`run ${runId} has no usable checkpoint${detail ? `: ${detail}` : ''}`);
    this.name = 'NoCheckpointError';
  }
}

export interface RestoredModel {
  runId: string;
  model: Model;
  meta: CheckpointMeta;
  checkpointPath: string;
  normalization: Normalization;
}

/**
 * The run's model at its newest checkpoint whose sha256 matches the store; a checkpoint
 * that fails its hash is skipped for the previous one (and named in the error if none is left).
 */
export async function restoreModelFromRun(
  db: StoreDb,
  idOrPrefix: string,
  /** Reads a checkpoint wherever it lives (CheckpointStores.readCheckpoint); default: local files only. */
  read: (location: string, sha256: string) => Promise<SafetensorsFile> = (location, sha256) =>
    readSafetensors(location, { expectedSha256: sha256 }),
): Promise<RestoredModel> {
  const run = getRun(db, idOrPrefix);
  const ckpts = listCheckpoints(db, run.id).sort((a, b) => b.step - a.step || b.epoch - a.epoch);
  const problems: string[] = [];
  for (const c of ckpts) {
    let file: SafetensorsFile;
    try {
      file = await read(c.path, c.sha256);
    } catch (err) {
      if (err instanceof CheckpointError || (err as { code?: string }).code === 'ENOENT') {
        problems.push(String((err as Error).message));
        continue;
      }
      throw err;
    }
    const meta0 = JSON.parse(file.metadata.meta ?? '{}') as CheckpointMeta;
    if (!meta0.inputShape || !meta0.numClasses || !meta0.normalization) {
      problems.push(`${c.path}: checkpoint metadata lacks inputShape/numClasses/normalization`);
      continue;
    }
    const model = buildModel(modelSpecFromConfig(run.config), meta0.inputShape, meta0.numClasses, run.config.seed);
    const meta = applyCheckpoint(file, c.path, model, null);
    const n = meta.normalization;
    return {
      runId: run.id,
      model,
      meta,
      checkpointPath: c.path,
      normalization: { mode: n.mode as Normalization['mode'], scale: Float32Array.from(n.scale), offset: Float32Array.from(n.offset) },
    };
  }
  throw new NoCheckpointError(run.id, problems.join('; '));
}
