/**
 * What the training loop needs from the ranks it trains with. One process (`bnn train`) uses
 * `soloCollective()`: the identity, nothing sent, gradients used as computed. A cluster worker
 * uses `groupCollective()` (group-collective.ts) over an elastic all-reduce group.
 *
 * Errors, as in Horovod's elastic loop: `MembershipChangedError` (the group is being re-formed:
 * join the new generation, take rank 0's state, no rollback of committed steps) and
 * `CollectiveFailedError` (a step could not complete: `regroup` reports it, then the same).
 * Either way the step in flight changed no weights and is redone.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { GradientHook } from '../bnn/layers.js';
import type { SafetensorsFile, Tensor } from '../checkpoint/index.js';
import { CollectiveFailedError, MembershipChangedError } from '../collective/index.js';
import type { CheckpointMeta } from './checkpoint.js';

/** Who this rank is in the current generation. */
export interface GroupView {
  rank: number;
  worldSize: number;
  generation: number;
}

/** This rank's contribution to a step's metrics. */
export interface StepMetrics {
  /** Mean loss of its shard times its samples. */
  lossSum: number;
  correct: number;
}

/** A step's gradients and metrics summed over the group (gradients already weighted by shard). */
export interface ReducedStep {
  grads: tf.NamedTensorMap;
  metrics: StepMetrics;
  /**
   * A group's report of NaN or ±Inf in the step (absent: the identity collective, whose loss
   * and gradients the loop sees as computed). `here`: what this rank found in its own loss or
   * gradients (it sent zeros and 0 instead); `ranks`: how many ranks found something, summed
   * with the gradients, so every rank learns the same count and fails or skips the step alike.
   */
  nonFinite?: { here: string | null; ranks: number };
  /** Releases what the reduction allocated (never the caller's own gradients). */
  dispose(): void;
}

/** One step's gradient reduction, begun before the backward pass. */
export interface StepReduction {
  /** Called from the backward pass with each quantized kernel's gradient as soon as it is complete; absent: not needed. */
  readonly hook?: GradientHook;
  /** This rank's gradients (null: its shard was empty) and metrics; resolves with the group's. */
  finish(grads: tf.NamedTensorMap | null, metrics: StepMetrics): Promise<ReducedStep>;
}

/** State that every rank contributes to a checkpoint (sign-ef residuals). */
export interface CheckpointExtras {
  tensors: Record<string, Tensor>;
  meta: Partial<CheckpointMeta>;
}

export interface TrainingCollective {
  group(): GroupView;
  /** Joins the current generation; `resync`: every rank takes rank 0's state before the next step. */
  join(): Promise<{ resync: boolean }>;
  /** Throws MembershipChangedError when a new generation is waiting (checked at each step boundary). */
  checkMembership(): void;
  /** Starts reducing optimizer step `step` (0-based); `shardScale` weights this rank's mean gradient. */
  beginStep(step: number, shardScale: number): StepReduction;
  /** Every rank gets rank 0's `v` exactly. */
  broadcastFromRank0(v: Float32Array): Promise<Float32Array>;
  /** Called on every rank at a checkpoint step: what rank 0 saves besides the model (null: nothing). */
  gatherCheckpointExtras(): Promise<CheckpointExtras | null>;
  /** After the first join of a resumed run: restores this rank's part of the extras; returns a line to log, if any. */
  restoreCheckpointExtras(file: SafetensorsFile, meta: CheckpointMeta, path: string): string | null;
  /** After MembershipChangedError or CollectiveFailedError: waits until the next generation is assigned. */
  regroup(err: Error): Promise<void>;
}

/** Errors after which the group re-forms and the step is redone (anything else ends the run here). */
export function isRegroupable(err: unknown): err is Error {
  return err instanceof MembershipChangedError || err instanceof CollectiveFailedError;
}

/** One process: the identity. Gradients and metrics come back as they went in. */
export function soloCollective(): TrainingCollective {
  return {
    group: () => ({ rank: 0, worldSize: 1, generation: 0 }),
    join: async () => ({ resync: false }),
    checkMembership: () => undefined,
    beginStep: () => ({
      finish: async (grads, metrics) => {
        // Nothing to wait for: yield to the event loop once a step anyway, so signals (Ctrl-C),
        // timers (telemetry) and progress output get their turn between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
        return { grads: grads ?? {}, metrics, dispose: () => undefined };
      },
    }),
    broadcastFromRank0: async (v) => v,
    gatherCheckpointExtras: async () => null,
    restoreCheckpointExtras: () => null,
    regroup: async (err) => {
      throw err;
    },
  };
}
