/**
 * The training state of one rank, in the manner of Horovod's elastic `State`:
 * - `save()` keeps what a step may change before its update is applied: the BatchNorm running
 *   statistics its forward pass moves (weights, moments and the step change only after the
 *   all-reduce completed, in `optimizer.apply`) and the epoch's running sums;
 * - `restore()` puts them back: a failed step leaves no trace;
 * - `commit()` is the step boundary: `save()`, then MembershipChangedError if a new generation
 *   is waiting (the step is then taken by the new group);
 * - `sync()` takes rank 0's whole state exactly (after a re-formed group).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../bnn/models.js';
import type { AdamW } from '../optim/adamw.js';
import { bumpWeightVersion } from '../engine/state.js';
import type { EpochProgress } from './checkpoint.js';
import type { TrainingCollective } from './collective.js';

export type { EpochProgress };

export class TrainingState {
  progress: EpochProgress = { lossSum: 0, correct: 0, seen: 0 };
  private readonly buffers: Float32Array[];
  private readonly saved: Float32Array[];
  private savedProgress: EpochProgress = { ...this.progress };

  constructor(
    readonly model: Model,
    readonly optimizer: AdamW,
    private readonly collective: TrainingCollective,
  ) {
    // the model's buffer arrays are fixed for its life: copies are made once
    this.buffers = model.buffers().map((b) => b.values);
    this.saved = this.buffers.map((b) => b.slice());
  }

  /** Optimizer steps completed. */
  get step(): number {
    return this.optimizer.step;
  }

  save(): void {
    this.buffers.forEach((b, i) => {
      this.saved[i]!.set(b);
    });
    this.savedProgress = { ...this.progress };
  }

  restore(): void {
    this.buffers.forEach((b, i) => {
      b.set(this.saved[i]!);
    });
    this.progress = { ...this.savedProgress };
  }

  commit(): void {
    this.save();
    this.collective.checkMembership();
  }

  /** Every rank ends with rank 0's parameters, moments, step, buffers and epoch sums, bit for bit. */
  async sync(): Promise<void> {
    const v = await this.collective.broadcastFromRank0(stateVector(this.model, this.optimizer, this.progress));
    this.progress = applyStateVector(v, this.model, this.optimizer);
    this.save();
  }
}

/** Elements of `stateVector` for this model: parameters, optimizer moments, buffers, then step and epoch sums. */
export function stateVectorLength(model: Model): number {
  let n = 0;
  for (const p of model.params()) n += 3 * p.variable.size;
  for (const b of model.buffers()) n += b.values.length;
  return n + 4;
}

/**
 * The whole training state as one Float32Array (sent to re-synchronise a re-formed group):
 * parameters, AdamW m and v, BatchNorm/dropout buffers, the optimizer step and the epoch's
 * running sums. Exact for steps below 2^24; the sums are metrics only.
 */
export function stateVector(model: Model, optimizer: AdamW, progress: EpochProgress): Float32Array {
  const out = new Float32Array(stateVectorLength(model));
  const st = optimizer.state();
  let o = 0;
  for (const p of model.params()) {
    out.set(p.variable.dataSync() as Float32Array, o);
    out.set(st.m[p.name]!, o + p.variable.size);
    out.set(st.v[p.name]!, o + 2 * p.variable.size);
    o += 3 * p.variable.size;
  }
  for (const b of model.buffers()) {
    out.set(b.values, o);
    o += b.values.length;
  }
  out.set([st.step, progress.lossSum, progress.correct, progress.seen], o);
  return out;
}

/** Loads a `stateVector` into model and optimizer; returns the epoch's running sums. */
export function applyStateVector(v: Float32Array, model: Model, optimizer: AdamW): EpochProgress {
  if (v.length !== stateVectorLength(model)) throw new Error(`state vector of ${v.length} elements, expected ${stateVectorLength(model)}`);
  const m: Record<string, Float32Array> = {};
  const vv: Record<string, Float32Array> = {};
  let o = 0;
  for (const p of model.params()) {
    const n = p.variable.size;
    tf.tidy(() => p.variable.assign(tf.tensor(v.slice(o, o + n), p.variable.shape)));
    m[p.name] = v.subarray(o + n, o + 2 * n);
    vv[p.name] = v.subarray(o + 2 * n, o + 3 * n);
    o += 3 * n;
  }
  for (const b of model.buffers()) {
    b.values.set(v.subarray(o, o + b.values.length));
    o += b.values.length;
  }
  optimizer.loadState({ step: v[o]!, m, v: vv });
  bumpWeightVersion();
  return { lossSum: v[o + 1]!, correct: v[o + 2]!, seen: v[o + 3]! };
}
