/**
 * The training loop's collective over an elastic all-reduce group (src/collective's
 * ElasticGroup): the flat gradient vector is one bucket per parameter plus two metric buckets
 * (this rank's loss · samples and correct count), each kernel's bucket sent from inside the
 * backward pass as soon as its gradient is complete, the rest at the end; the reduced vector
 * comes back as tensor views. With sign-ef, every rank's error-feedback residuals are
 * checkpointed, so a resumed run with the same world size continues bit-identically.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, type SafetensorsFile, type Tensor } from '../checkpoint/index.js';
import { wireLimit, type BucketedStep, type BucketedVector, type Compression } from '../collective/index.js';
import type { GradientHook } from '../bnn/layers.js';
import type { CheckpointMeta } from './checkpoint.js';
import type { CheckpointExtras, GroupView, StepMetrics, StepReduction, TrainingCollective } from './collective.js';
import { TrainingError } from './errors.js';
import { fillGradients, gradientViews, layoutVector, type FlatLayout } from './gradients.js';
import { formatValue } from './non-finite.js';

/** What the group collective needs of an elastic group (ElasticGroup provides it). */
export interface ByteGroup {
  readonly assignment: GroupView;
  /** The all-reduce's wire format: gradients must fit it (`wireLimit`). */
  readonly compression: Compression;
  join(): Promise<{ resync: boolean }>;
  checkMembership(): void;
  beginAllreduceSum(vec: BucketedVector, step: number): BucketedStep;
  broadcastFromRank0(v: Float32Array): Promise<Float32Array>;
  gatherFromEveryRank(mine: Float32Array): Promise<Float32Array[]>;
  errorFeedback(): { worker: Float32Array; owner: Float32Array | null } | null;
  restoreErrorFeedback(worker: Float32Array, owner: Float32Array | null): void;
  regroup(err: Error): Promise<void>;
}

export interface GroupCollectiveOptions {
  /** Wraps each step's wait for the reduced vector (the worker times it for its progress reports). */
  timeReduce?<T>(wait: () => Promise<T>): Promise<T>;
}

/** Trailing metric buckets: this rank's loss · samples, its correct count, 1 when its loss or a gradient was NaN or ±Inf. */
const METRICS = 3;

export function groupCollective(group: ByteGroup, layout: FlatLayout, options: GroupCollectiveOptions = {}): TrainingCollective {
  const vec = layoutVector(layout, METRICS);
  const view = (): GroupView => {
    const { rank, worldSize, generation } = group.assignment;
    return { rank, worldSize, generation };
  };
  return {
    group: view,
    join: () => group.join(),
    checkMembership: () => group.checkMembership(),
    beginStep: (step, shardScale) =>
      beginStep(group.beginAllreduceSum(vec, step), vec, layout, shardScale, wireLimit(group.compression), options),
    broadcastFromRank0: (v) => group.broadcastFromRank0(v),
    gatherCheckpointExtras: () => gatherErrorFeedback(group),
    restoreCheckpointExtras: (file, meta, path) => restoreErrorFeedback(group, file, meta, path),
    regroup: (err) => group.regroup(err),
  };
}

/**
 * One step's reduction. A gradient with NaN, ±Inf or a value the wire format cannot carry is
 * sent as zeros (fillGradients tests it in its copy), a non-finite loss as 0, and the third
 * metric says so: a member never puts a non-finite value on the wire, and every rank learns
 * from the sum that some rank's step was not finite.
 */
function beginStep(
  inner: BucketedStep,
  vec: BucketedVector,
  layout: FlatLayout,
  scale: number,
  limit: number,
  options: GroupCollectiveOptions,
): StepReduction {
  const v = vec.data;
  const hooked = new Array<boolean>(layout.params.length).fill(false);
  let gradProblem: string | null = null;
  // bucket i of the vector is parameter i
  const hook: GradientHook = (name, grad) => {
    const i = layout.index.get(name);
    if (i === undefined) return;
    if (hooked[i])
      throw new TrainingError(`${name}: its gradient arrived twice in one backward pass (a kernel used twice is not supported)`);
    hooked[i] = true;
    const problem = fillGradients(v, [layout.params[i]!], [layout.offsets[i]!], { [name]: grad }, scale, limit);
    gradProblem ??= problem;
    inner.submit(i);
  };
  return {
    hook,
    finish: async (grads, metrics) => {
      if (grads) {
        const rest = layout.params.map((_, i) => i).filter((i) => !hooked[i]);
        const p = fillGradients(
          v,
          rest.map((i) => layout.params[i]!),
          rest.map((i) => layout.offsets[i]!),
          grads,
          scale,
          limit,
        ); // native scaled copy
        gradProblem ??= p;
      } else {
        v.fill(0);
      }
      const loss = metrics.lossSum;
      // the loss sum travels in the same wire format (fp16 turns 65520 into Inf)
      const lossFits = Math.abs(loss) < limit;
      const lossProblem = Number.isFinite(loss)
        ? `loss sum is ${formatValue(loss)} (the wire format carries |x| < ${limit})`
        : `loss is ${formatValue(loss)}`;
      const here = lossFits ? gradProblem : lossProblem;
      v[layout.length] = lossFits ? loss : 0;
      v[layout.length + 1] = metrics.correct;
      v[layout.length + 2] = here ? 1 : 0;
      const sum = await (options.timeReduce ? options.timeReduce(() => inner.finish()) : inner.finish());
      const reduced = gradientViews(layout.params, layout.offsets, sum); // views of the result; disposed after the update
      const summed: StepMetrics = { lossSum: sum[layout.length]!, correct: sum[layout.length + 1]! };
      return {
        grads: reduced,
        metrics: summed,
        nonFinite: { here, ranks: sum[layout.length + 2]! },
        dispose: () => tf.dispose(reduced),
      };
    },
  };
}

/** Every rank's sign-ef residuals (gathered exactly by all ranks at a checkpoint step); null without sign-ef. */
async function gatherErrorFeedback(group: ByteGroup): Promise<CheckpointExtras | null> {
  const ef = group.errorFeedback();
  if (!ef || group.assignment.worldSize < 2) return null;
  const n = ef.worker.length;
  const mine = new Float32Array(ef.owner ? 2 * n : n);
  mine.set(ef.worker);
  if (ef.owner) mine.set(ef.owner, n);
  const all = await group.gatherFromEveryRank(mine);
  const tensors: Record<string, Tensor> = {};
  all.forEach((t, r) => {
    tensors[`ef/rank${r}`] = { dtype: 'F32', shape: [t.length], data: t };
  });
  return { tensors, meta: { errorFeedback: { worldSize: all.length, length: n, hasOwner: ef.owner !== null } } };
}

/** Restores this rank's residuals from a checkpoint written by a group of the same size; otherwise they start from zero. */
function restoreErrorFeedback(group: ByteGroup, file: SafetensorsFile, meta: CheckpointMeta, path: string): string | null {
  const ef = meta.errorFeedback;
  if (!ef) return null;
  const { rank, worldSize } = group.assignment;
  if (ef.worldSize !== worldSize)
    return `${path}: sign-ef residuals saved by ${ef.worldSize} rank(s), this group has ${worldSize}: starting from zero`;
  const t = file.tensors[`ef/rank${rank}`];
  const want = ef.hasOwner ? 2 * ef.length : ef.length;
  if (t?.dtype !== 'F32' || t.data.length !== want)
    throw CheckpointError.at(path, `tensor 'ef/rank${rank}' is missing or not F32[${want}]`);
  const v = t.data as Float32Array;
  group.restoreErrorFeedback(v.subarray(0, ef.length), ef.hasOwner ? v.subarray(ef.length) : null);
  return null;
}
