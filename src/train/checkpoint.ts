// Training state <-> safetensors: parameters, BatchNorm buffers, optimizer moments and the
// data cursor. Everything needed to continue a run bit-identically.
import * as tf from '@tensorflow/tfjs-core';
import {
  encodeSafetensors,
  readSafetensors,
  writeFileAtomic,
  CheckpointError,
  type CheckpointStore,
  type SafetensorsFile,
  type Tensor,
} from '../checkpoint/index.js';
import type { Model } from '../bnn/models.js';
import type { AdamW } from '../optim/adamw.js';
import { bumpWeightVersion } from '../engine/state.js';
import type { CursorState } from '../data/index.js';
import { NonFiniteStateError } from './errors.js';
import { describeNonFinite } from './non-finite.js';

export const CHECKPOINT_FORMAT = 'bnn-checkpoint/1';

export interface CheckpointMeta {
  runId: string;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  step: number;
  /** Position of the next batch. Data order is a pure function of (seed, epoch), so this is the RNG state too. */
  cursor: CursorState;
  configHash: string;
  arch: string;
  precision: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** Input normalisation of the run (x = raw·scale[c] + offset[c]), so exports need no data set. */
  normalization: { mode: string; scale: number[]; offset: number[] };
  /** Cluster runs: the membership generation and world size that wrote it. */
  generation?: number;
  worldSize?: number;
  /** Cluster runs: the running sums of the epoch in progress, so a resumed epoch reports whole-epoch metrics. */
  epochProgress?: EpochProgress;
  /**
   * sign-ef cluster runs: every rank's error-feedback residuals, tensors `ef/rank<r>` (the worker
   * residual of `length` elements, then, with `hasOwner`, the reduce-scatter owner residual).
   */
  errorFeedback?: { worldSize: number; length: number; hasOwner: boolean };
}

/** Running sums of an epoch's training metrics. */
export interface EpochProgress {
  lossSum: number;
  correct: number;
  seen: number;
}

/** All tensors of a model's state by checkpoint name. */
export function modelTensors(model: Model): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const p of model.params()) {
    out[`param/${p.name}`] = { dtype: 'F32', shape: p.variable.shape, data: Float32Array.from(p.variable.dataSync() as Float32Array) };
  }
  for (const b of model.buffers()) out[`buffer/${b.name}`] = { dtype: 'F32', shape: b.shape, data: Float32Array.from(b.values) };
  return out;
}

/**
 * Writes the training state to `path`, or to `location` of a checkpoint store, streaming the
 * tensors' own bytes (no copy of the whole file is made; atomically, see writeFileAtomic and
 * CheckpointStore.write). Refuses, with a
 * NonFiniteStateError naming the tensor and element and before touching any file, a state
 * with NaN or ±Inf anywhere (parameters, BatchNorm statistics, moments, extras): a recorded
 * checkpoint is always one a run can continue from.
 */
export async function saveCheckpoint(
  target: string | { store: CheckpointStore; location: string },
  model: Model,
  optimizer: AdamW,
  meta: CheckpointMeta,
  extra: Record<string, Tensor> = {},
) {
  const tensors = { ...modelTensors(model), ...extra };
  const st = optimizer.state();
  for (const p of model.params()) {
    tensors[`optim/m/${p.name}`] = { dtype: 'F32', shape: p.variable.shape, data: st.m[p.name] };
    tensors[`optim/v/${p.name}`] = { dtype: 'F32', shape: p.variable.shape, data: st.v[p.name] };
  }
  for (const [name, t] of Object.entries(tensors)) {
    const bad = t.data instanceof Float32Array ? describeNonFinite(t.data) : null;
    if (bad) throw new NonFiniteStateError(`${name} ${bad}`, typeof target === 'string' ? target : target.location);
  }
  const chunks = encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    meta: JSON.stringify({ ...meta, optimizerStep: st.step }),
  });
  return typeof target === 'string' ? writeFileAtomic(target, chunks) : target.store.write(target.location, chunks);
}

function take(tensors: Record<string, Tensor>, name: string, shape: readonly number[], path: string): Float32Array {
  const t = tensors[name];
  if (!t) throw new CheckpointError(`${path}: tensor '${name}' is missing (the checkpoint belongs to a different model)`);
  if (t.dtype !== 'F32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(`${path}: tensor '${name}' is ${t.dtype}[${t.shape}], expected F32[${shape}]`);
  }
  return t.data as Float32Array;
}

/** Restores model (and optimizer) state; the sha256 recorded in the store must match. */
export async function loadCheckpoint(
  path: string,
  model: Model,
  optimizer: AdamW | null,
  expectedSha256?: string,
): Promise<CheckpointMeta> {
  return applyCheckpoint(await readSafetensors(path, { expectedSha256 }), path, model, optimizer);
}

/**
 * Throws CheckpointError, before anything is loaded, when a float tensor of `file` holds NaN or
 * ±Inf (written by a build without the guard of saveCheckpoint, or edited): nothing can train
 * from such a state, nor predict with it.
 */
function refuseNonFinite(file: SafetensorsFile, path: string): void {
  for (const [name, t] of Object.entries(file.tensors)) {
    const bad = t.data instanceof Float32Array ? describeNonFinite(t.data) : null;
    if (bad) throw CheckpointError.at(path, `tensor '${name}' ${bad}: a state with NaN or Inf cannot be loaded`);
  }
}

/** Restores model (and optimizer) state from a checkpoint file already read and verified. */
export function applyCheckpoint(file: SafetensorsFile, path: string, model: Model, optimizer: AdamW | null): CheckpointMeta {
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      `${path}: not a bnn checkpoint (format '${file.metadata.format ?? 'none'}', expected '${CHECKPOINT_FORMAT}')`,
    );
  }
  const meta = JSON.parse(file.metadata.meta ?? '{}') as CheckpointMeta & { optimizerStep: number };
  refuseNonFinite(file, path);
  for (const p of model.params()) {
    const values = take(file.tensors, `param/${p.name}`, p.variable.shape, path);
    tf.tidy(() => p.variable.assign(tf.tensor(Float32Array.from(values), p.variable.shape)));
  }
  for (const b of model.buffers()) b.values.set(take(file.tensors, `buffer/${b.name}`, b.shape, path));
  if (optimizer) {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const p of model.params()) {
      m[p.name] = take(file.tensors, `optim/m/${p.name}`, p.variable.shape, path);
      v[p.name] = take(file.tensors, `optim/v/${p.name}`, p.variable.shape, path);
    }
    optimizer.loadState({ step: meta.optimizerStep, m, v });
  }
  bumpWeightVersion();
  return meta;
}
