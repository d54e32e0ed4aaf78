// One rank's data-parallel training: the same data, model, optimizer and schedule as `bnn train`
// (same seed → identical initial weights on every rank); per step each rank takes its contiguous
// shard of the global batch, weights its mean gradient by shard/global size, and the all-reduce
// sums in rank order, so every rank applies the full-batch mean gradient.
//
// Elastic: the batch of global step s is a pure function of (seed, s), and the shard of a rank
// a function of (rank, world size) at that step, so a re-formed group simply redoes the step in
// flight with its new ranks (a lost worker's share is spread over the survivors; the global
// batch stays the same). A failed step changed no weights; the BatchNorm/dropout buffers its
// forward pass touched are put back. Rank 0 writes checkpoints (every rank holds the same weights).
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../src/config/index.js';
import { configHash } from '../src/config/index.js';
import { readSafetensors } from '../src/checkpoint/index.js';
import { BatchCursor, computeNormalization, loadDataset, shardIndices, shardRange, stratifiedSubset } from '../src/data/index.js';
import { buildModel } from '../src/bnn/models.js';
import { withGradientHook } from '../src/bnn/layers.js';
import { lrFactor } from '../src/optim/schedule.js';
import { computeGradients, evaluate, makeBatch } from '../src/train/trainer.js';
import { datasetSpecFromConfig, modelSpecFromConfig, optimizerFromConfig, scheduleFromConfig } from '../src/train/run.js';
import { applyCheckpoint, applyStateVector, checkpointErrorFeedback, saveCheckpoint, stateVector, type CheckpointMeta, type EpochProgress } from '../src/train/state.js';
import type { SafetensorsFile, Tensor } from '../src/checkpoint/index.js';
import { Rng } from '../src/util/rng.js';
import type { MetricsReport } from '../src/rpc/index.js';
import { WorkerError, RunStoppedError } from './errors.js';
import { flatLayout } from './flat.js';
import { fillGradients, gradientVector, type BucketedStep } from '../src/collective/gradient-buckets.js';
import { gradientViews } from '../src/collective/gradient-tensors.js';
import { isRegroupable, type GroupView } from './session.js';

export interface RankAssignment {
  runId: string;
  config: RunConfig;
  /** Continue from this checkpoint (its sha256 is checked); absent: from the start. */
  resume?: { path: string; sha256: string };
}

/** A checkpoint rank 0 wrote, for the coordinator to record. */
export interface WrittenCheckpoint {
  path: string;
  step: number;
  epoch: number;
  sha256: string;
  bytes: number;
}

export interface RankDeps {
  /** This rank's place in the current generation. */
  group(): GroupView;
  /** Joins the current generation's group; `resync`: take rank 0's state before the next step. */
  join(): Promise<{ resync: boolean }>;
  /**
   * Starts summing `v` (a gradientVector) over the group in rank order (every rank gets the same
   * result); `step` is the 0-based optimizer step. `submit(b)` sends bucket b as soon as it is
   * written (from the backward pass's gradient hook); `finish()` sends the rest and resolves with the sum.
   */
  beginAllreduceSum(v: Float32Array, step: number): BucketedStep;
  /** Every rank gets rank 0's `v` exactly. */
  broadcastFromRank0(v: Float32Array): Promise<Float32Array>;
  /** Every rank's `mine` (same length everywhere), exactly, on every rank: index r is rank r's. */
  gatherFromEveryRank(mine: Float32Array): Promise<Float32Array[]>;
  /** This rank's sign-ef error-feedback residuals in the current generation; null without sign-ef or before its first step. */
  errorFeedback(): { worker: Float32Array; owner: Float32Array | null } | null;
  /** Restores a checkpoint's residuals into the current generation (after join, before a step). */
  restoreErrorFeedback(worker: Float32Array, owner: Float32Array | null): void;
  /** After MembershipChangedError or CollectiveFailedError: waits until the next generation is assigned. */
  regroup(err: Error): Promise<void>;
  /** Sends metrics to the coordinator. */
  report(m: Partial<MetricsReport>): Promise<void>;
  /** Records a checkpoint with the coordinator. */
  reportCheckpoint(c: WrittenCheckpoint): Promise<void>;
  /** After each optimizer step: its wall time, this rank's samples in it, the step number (for the monitor). */
  onStep?(seconds: number, samples: number, step: number): void;
  /** Throws (e.g. RunStoppedError) when the run must stop; called between steps. */
  checkStop(): void;
  /** Write the final parameters as JSON to `<dir>/weights-rank<r>.json` (tests compare them). */
  dumpWeightsDir?: string;
  log(line: string): void;
}

export interface RankResult {
  steps: number;
  finalTestAcc: number | null;
}

/** Trains every epoch of the assignment; rank 0 evaluates, checkpoints and reports each epoch. */
export async function trainRank(a: RankAssignment, deps: RankDeps): Promise<RankResult> {
  const { config } = a;
  const ds = await loadDataset(datasetSpecFromConfig(config));
  const train = config.dataset.subset < 1 ? stratifiedSubset(ds.train, config.dataset.subset, config.seed) : ds.train;
  const norm = computeNormalization({ shape: ds.shape, train }, config.dataset.normalize);
  const model = buildModel(modelSpecFromConfig(config), ds.shape, ds.numClasses, config.seed);
  try {
    const optimizer = optimizerFromConfig(config, model);
    const cursor = new BatchCursor({ n: train.n, batchSize: config.train.batchSize, seed: config.seed });
    const spe = cursor.stepsPerEpoch;
    const totalSteps = config.train.epochs * spe;
    const schedule = scheduleFromConfig(config, spe);
    const layout = flatLayout(model.params());
    const hash = configHash(config);
    const ckptDir = path.resolve(config.checkpointDir, a.runId);
    const everyK = config.train.checkpointEverySteps;
    // Gradient, then this rank's (loss · samples) and correct count, summed along with it.
    // bnn:buckets (src/collective/gradient-buckets.ts): reduced one bucket per tensor + 1 per metric
    const vec = gradientVector(layout.params.map((p) => p.variable.size), 2);
    // bucket i of vec is parameter i (every parameter has at least one element)
    if (layout.params.some((p) => p.variable.size === 0)) throw new WorkerError('a parameter has no elements');
    const paramIndex = new Map(layout.params.map((p, i) => [p.variable.name, i]));
    const per = model.inputShape[0] * model.inputShape[1] * model.inputShape[2];
    let progress: EpochProgress = { lossSum: 0, correct: 0, seen: 0 };
    let finalTestAcc: number | null = null;
    let lastCheckpointStep = -1;

    // sign-ef residuals of the checkpoint resumed from, restored after the first join
    let resumeEf: { file: SafetensorsFile; meta: CheckpointMeta; path: string } | null = null;
    if (a.resume) {
      const file = await readSafetensors(a.resume.path, { expectedSha256: a.resume.sha256 });
      const meta = applyCheckpoint(file, a.resume.path, model, optimizer);
      resumeEf = { file, meta, path: a.resume.path };
      if (meta.configHash !== hash) throw new WorkerError(`${a.resume.path}: written by a different config (hash ${meta.configHash}, this run's is ${hash})`);
      if (meta.step % spe !== 0 && meta.epochProgress) progress = { ...meta.epochProgress };
      lastCheckpointStep = meta.step;
      deps.log(`resumed from ${a.resume.path} at step ${meta.step} (epoch ${Math.floor(meta.step / spe) + 1}, batch ${meta.step % spe})`);
    }

    // The sign-ef residuals of every rank (gathered by all ranks at a checkpoint step), so a resumed
    // run with the same world size continues bit-identically; null without sign-ef.
    const gatherErrorFeedback = async (): Promise<{ extra: Record<string, Tensor>; meta: CheckpointMeta['errorFeedback'] } | null> => {
      const ef = deps.errorFeedback();
      if (!ef || deps.group().worldSize < 2) return null;
      const n = ef.worker.length;
      const mine = new Float32Array(ef.owner ? 2 * n : n);
      mine.set(ef.worker);
      if (ef.owner) mine.set(ef.owner, n);
      const all = await deps.gatherFromEveryRank(mine);
      const extra: Record<string, Tensor> = {};
      all.forEach((v, r) => (extra[`ef/rank${r}`] = { dtype: 'F32', shape: [v.length], data: v }));
      return { extra, meta: { worldSize: all.length, length: n, hasOwner: ef.owner !== null } };
    };

    const writeCheckpoint = async (stem: string, ef: Awaited<ReturnType<typeof gatherErrorFeedback>> = null): Promise<void> => {
      const s = optimizer.step;
      const file = path.join(ckptDir, `${stem}.safetensors`);
      mkdirSync(ckptDir, { recursive: true });
      const g = deps.group();
      const meta: CheckpointMeta = {
        runId: a.runId, epoch: Math.floor(s / spe), step: s, cursor: { epoch: Math.floor(s / spe), step: s % spe }, configHash: hash,
        arch: config.model.arch, precision: config.model.precision, inputShape: model.inputShape, numClasses: model.numClasses,
        normalization: { mode: norm.mode, scale: [...norm.scale], offset: [...norm.offset] },
        generation: g.generation, worldSize: g.worldSize, ...(s % spe !== 0 ? { epochProgress: { ...progress } } : {}),
        ...(ef ? { errorFeedback: ef.meta } : {}),
      };
      const { sha256, bytes } = await saveCheckpoint(file, model, optimizer, meta, ef?.extra ?? {});
      lastCheckpointStep = s;
      // Unrecorded, the file is merely unused by a resume; training goes on.
      await deps.reportCheckpoint({ path: file, step: s, epoch: meta.epoch, sha256, bytes })
        .catch((err: Error) => deps.log(`checkpoint ${file} not recorded: ${err.message}`));
    };
    const stepStem = (s: number) => `step-${String(s).padStart(8, '0')}`;

    // BatchNorm running statistics (arrays fixed for the model's life), saved before each step
    // so a failed step can put back what its forward pass moved.
    const buffers = model.buffers();
    const saved = buffers.map((b) => b.values.slice());
    const restoreBuffers = () => buffers.forEach((b, i) => b.values.set(saved[i]!));

    let joined = false;
    let e0 = performance.now();
    // A cancelled run keeps its last step boundary: rank 0 checkpoints it on the way out.
    try {
      while (optimizer.step < totalSteps) {
        deps.checkStop();
        const s = optimizer.step;
        buffers.forEach((b, i) => saved[i]!.set(b.values));
        try {
          if (!joined) {
            const { resync } = await deps.join();
            if (resync) {
              const v = await deps.broadcastFromRank0(stateVector(model, optimizer, progress));
              progress = applyStateVector(v, model, optimizer);
              if (optimizer.step !== s) deps.log(`took rank 0's state at step ${optimizer.step} (was at ${s})`);
            }
            joined = true;
            if (resumeEf) {
              const { rank, worldSize } = deps.group();
              const ef = checkpointErrorFeedback(resumeEf.file, resumeEf.meta, rank, worldSize);
              if (ef) deps.restoreErrorFeedback(ef.worker, ef.owner);
              else if (resumeEf.meta.errorFeedback) deps.log(`${resumeEf.path}: sign-ef residuals saved by ${resumeEf.meta.errorFeedback.worldSize} rank(s), this group has ${worldSize}: starting from zero`);
              resumeEf = null;
            }
            continue; // from the top: the state (and so the step) may be rank 0's now
          }
          const { rank, worldSize } = deps.group();
          if (s % spe === 0 && progress.seen === 0) e0 = performance.now();
          cursor.setState({ epoch: Math.floor(s / spe), step: s % spe });
          const batch = cursor.next();
          const s0 = performance.now();
          const global = batch.indices.length;
          const mine = shardIndices(batch.indices, rank, worldSize);
          const scale = worldSize === 1 ? 1 : mine.length / global;
          const reduce = deps.beginAllreduceSum(vec, s);
          if (mine.length > 0) {
            const aug = config.train.augment;
            let x: tf.Tensor4D;
            let labels: Int32Array;
            if (aug.hflip || aug.shiftPixels > 0) {
              // Augmentation draws run over the whole batch in order: build it all, keep this shard.
              const full = makeBatch(train, batch.indices, norm, model.inputShape,
                { ...aug, rng: Rng.derive(config.seed, 'augment', batch.epoch, batch.step) });
              const { start, end } = shardRange(global, rank, worldSize);
              x = tf.tensor4d((full.x.dataSync() as Float32Array).slice(start * per, end * per), [end - start, ...model.inputShape]);
              labels = full.labels.slice(start, end);
              full.x.dispose();
            } else {
              ({ x, labels } = makeBatch(train, mine, norm, model.inputShape));
            }
            // bnn:buckets: each kernel's gradient is written and sent from inside the backward
            // pass, as soon as it is complete; the rest (BatchNorm, biases, metrics) at the end.
            const hooked = new Array<boolean>(layout.params.length).fill(false);
            const g = withGradientHook((name, grad) => {
              const i = paramIndex.get(name);
              if (i === undefined) return;
              if (hooked[i]) throw new WorkerError(`${name}: its gradient arrived twice in one backward pass (a kernel used twice is not supported)`);
              hooked[i] = true;
              fillGradients(vec, [layout.params[i]!], [layout.offsets[i]!], { [name]: grad }, scale);
              reduce.submit(i);
            }, () => computeGradients(model, x, labels, config.train.labelSmoothing));
            x.dispose();
            const rest = layout.params.map((_, i) => i).filter((i) => !hooked[i]);
            fillGradients(vec, rest.map((i) => layout.params[i]!), rest.map((i) => layout.offsets[i]!), g.grads, scale); // native scaled copy
            tf.dispose(g.grads);
            vec[layout.length] = g.loss * mine.length;
            vec[layout.length + 1] = g.correct;
          } else {
            vec.fill(0);
          }
          const sum = await reduce.finish();
          const grads = gradientViews(layout.params, layout.offsets, sum); // bnn:buckets (views of the result; disposed below)
          try {
            optimizer.apply(grads, lrFactor(optimizer.step, schedule));
          } finally {
            tf.dispose(grads);
          }
          progress.lossSum += sum[layout.length]!;
          progress.correct += sum[layout.length + 1]!;
          progress.seen += global;
          deps.onStep?.((performance.now() - s0) / 1000, mine.length, optimizer.step);
        } catch (err) {
          // The step changed no weights; its forward pass may have moved BatchNorm statistics.
          if (!isRegroupable(err)) {
            if (err instanceof RunStoppedError) restoreBuffers();
            throw err;
          }
          restoreBuffers();
          deps.log(`step ${s + 1}: ${(err as Error).message}; re-forming the group`);
          await deps.regroup(err);
          joined = false;
          continue;
        }
        const done = optimizer.step;
        const epochEnd = done % spe === 0;
        const stepEndMs = performance.now(); // an epoch's time ends here, before checkpoint work
        const checkpointHere = epochEnd || (everyK > 0 && done % everyK === 0);
        // every rank takes part in gathering the sign-ef residuals at a checkpoint step; a failure
        // here leaves the checkpoint without them (a resume then starts them from zero)
        const ef = checkpointHere ? await gatherErrorFeedback().catch((err: Error) => {
          deps.log(`step ${done}: sign-ef residuals not gathered for the checkpoint (${err.message})`);
          return null;
        }) : null;
        if (deps.group().rank !== 0) {
          if (epochEnd) progress = { lossSum: 0, correct: 0, seen: 0 };
          continue;
        }
        if (epochEnd) {
          const epoch = done / spe;
          const epochTimeS = (stepEndMs - e0) / 1000;
          const test = config.train.evalEveryEpoch || epoch === config.train.epochs ? evaluate(model, ds.test, norm) : null;
          if (test) finalTestAcc = test.accuracy;
          await writeCheckpoint(`epoch-${String(epoch).padStart(4, '0')}`, ef);
          const p = progress;
          await deps.report({
            epoch, train_loss: p.lossSum / p.seen, train_acc: p.correct / p.seen, test_loss: test ? test.loss : -1, test_acc: test ? test.accuracy : -1,
            lr: config.train.optimizer.lr * lrFactor(done, schedule), samples_per_s: p.seen / epochTimeS, epoch_time_s: epochTimeS, steps: done,
          });
          deps.log(`epoch ${epoch}/${config.train.epochs} loss ${(p.lossSum / p.seen).toFixed(4)} acc ${(p.correct / p.seen).toFixed(4)}` +
            (test ? ` test acc ${test.accuracy.toFixed(4)}` : ''));
          progress = { lossSum: 0, correct: 0, seen: 0 };
        } else if (checkpointHere) {
          await writeCheckpoint(stepStem(done), ef);
        }
      }
    } catch (err) {
      if (err instanceof RunStoppedError && deps.group().rank === 0 && joined && optimizer.step > lastCheckpointStep && optimizer.step > 0) {
        await writeCheckpoint(stepStem(optimizer.step)).catch((e: Error) => deps.log(`checkpoint on stop failed: ${e.message}`));
      }
      throw err;
    }
    if (deps.dumpWeightsDir) {
      mkdirSync(deps.dumpWeightsDir, { recursive: true });
      const params: Record<string, number[]> = {};
      for (const p of model.params()) params[p.name] = Array.from(p.variable.dataSync() as Float32Array);
      const { rank, worldSize, generation } = deps.group();
      writeFileSync(path.join(deps.dumpWeightsDir, `weights-rank${rank}.json`),
        JSON.stringify({ runId: a.runId, steps: optimizer.step, worldSize, generation, params }));
    }
    return { steps: optimizer.step, finalTestAcc };
  } finally {
    model.dispose();
  }
}
