/**
 * The training loop: the only one. `bnn train` runs it with `soloCollective()` and the store
 * sink; a cluster worker with `groupCollective()` and the RPC sink.
 *
 * Data-parallel: the batch of global step s is a pure function of (seed, s) and each rank's
 * shard a function of (rank, world size), so a re-formed group simply redoes the step in flight
 * with its new ranks (a lost worker's share is spread over the survivors; the global batch stays
 * the same). Each rank weights its mean gradient by its share of the batch and the collective
 * sums in rank order, so every rank applies the full-batch mean gradient and holds the same
 * weights; rank 0 evaluates, checkpoints and reports.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, readSafetensors, type CheckpointStore, type SafetensorsFile } from '../checkpoint/index.js';
import { sameExperiment, configHash } from '../config/index.js';
import { shardIndices, shardRange, type Batch } from '../data/index.js';
import { withGradientHook } from '../bnn/layers.js';
import { lrFactor } from '../optim/schedule.js';
import { Rng } from '../util/rng.js';
import { isRegroupable, type CheckpointExtras, type ReducedStep, type StepMetrics, type TrainingCollective } from './collective.js';
import { applyCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { TrainingState } from './elastic-state.js';
import { DivergedError, NonFiniteStateError, TrainingStoppedError } from './errors.js';
import { firstNonFiniteGradient, formatValue, type NonFinitePolicy } from './non-finite.js';
import type { TrainingSetup } from './setup.js';
import type { TrainingSink } from './sink.js';
import { computeGradients, evaluate, makeBatch } from './trainer.js';

export interface LoopOptions {
  runId: string;
  /** Directory of this run's checkpoint files (unless `checkpointStore` is given). */
  checkpointDir: string;
  /** Where new checkpoints go instead (`locationOf(runId, stem)`): a local directory or the NATS object store. */
  checkpointStore?: CheckpointStore;
  /** Continue from this checkpoint (its sha256 is checked); absent: from the start. */
  resume?: { path: string; sha256: string };
  /** Reads (once) and verifies the checkpoint to resume from, wherever it lives; default: a local file. */
  readCheckpoint?: (location: string, sha256: string) => Promise<SafetensorsFile>;
  /** Throws (a TrainingStoppedError to stop, anything else to fail) when the run must end; called between steps. */
  checkStop(): void;
  /** Write each rank's final parameters as JSON to `<dir>/weights-rank<r>.json` (tests compare them). */
  dumpWeightsDir?: string;
}

export interface LoopResult {
  /** Optimizer steps done. */
  steps: number;
}

/** Trains every remaining step of `setup`; see the module comment. Stops by throwing (TrainingStoppedError included). */
export async function runTrainingLoop(
  setup: TrainingSetup,
  collective: TrainingCollective,
  sink: TrainingSink,
  o: LoopOptions,
): Promise<LoopResult> {
  return new TrainingRun(setup, collective, sink, o).run();
}

const stepStem = (s: number) => `step-${String(s).padStart(8, '0')}`;
const epochStem = (e: number) => `epoch-${String(e).padStart(4, '0')}`;

class TrainingRun {
  private readonly state: TrainingState;
  private readonly hash: string;
  private joined = false;
  private lastCheckpointStep = -1;
  private epochStartMs = performance.now();
  /** `train.onNonFinite`: what a step whose loss or gradient is NaN or ±Inf does. */
  private readonly onNonFinite: NonFinitePolicy;
  /** Steps of the current epoch skipped for a NaN or ±Inf loss or gradient (`onNonFinite: skip`). */
  private skippedInEpoch = 0;
  /** The checkpoint resumed from, until its collective extras are restored after the first join. */
  private resumed: { file: SafetensorsFile; meta: CheckpointMeta; path: string } | null = null;

  constructor(
    private readonly setup: TrainingSetup,
    private readonly collective: TrainingCollective,
    private readonly sink: TrainingSink,
    private readonly o: LoopOptions,
  ) {
    this.state = new TrainingState(setup.model, setup.optimizer, collective);
    this.hash = configHash(setup.config);
    this.onNonFinite = setup.config.train.onNonFinite ?? 'fail';
  }

  async run(): Promise<LoopResult> {
    if (this.o.resume) await this.loadResume(this.o.resume);
    try {
      while (this.state.step < this.setup.totalSteps) {
        this.o.checkStop();
        if (!(await this.attemptStep())) continue;
        await this.afterStep(performance.now());
      }
    } catch (err) {
      if (err instanceof TrainingStoppedError) await this.checkpointOnStop();
      throw err;
    }
    if (this.o.dumpWeightsDir) this.dumpWeights(this.o.dumpWeightsDir);
    return { steps: this.state.step };
  }

  /** Joins the group or takes one step; false when no step was completed (joined, or re-forming). */
  private async attemptStep(): Promise<boolean> {
    const s = this.state.step;
    try {
      if (!this.joined) {
        this.state.save();
        await this.join();
        return false; // from the top: the state (and so the step) may be rank 0's now
      }
      this.state.commit();
      await this.trainStep();
      return true;
    } catch (err) {
      // The step changed no weights; its forward pass may have moved BatchNorm statistics.
      this.state.restore();
      if (!isRegroupable(err)) throw err;
      this.sink.log(`step ${s + 1}: ${err.message}; re-forming the group`);
      await this.collective.regroup(err);
      this.joined = false;
      return false;
    }
  }

  private async loadResume(resume: { path: string; sha256: string }): Promise<void> {
    const { setup } = this;
    const file = this.o.readCheckpoint
      ? await this.o.readCheckpoint(resume.path, resume.sha256)
      : await readSafetensors(resume.path, { expectedSha256: resume.sha256 });
    const meta = applyCheckpoint(file, resume.path, setup.model, setup.optimizer);
    if (!sameExperiment(meta.configHash, setup.config)) {
      throw CheckpointError.at(resume.path, `written by a different config (hash ${meta.configHash}, this run's is ${this.hash})`);
    }
    const spe = setup.stepsPerEpoch;
    if (meta.step % spe !== 0 && meta.epochProgress) this.state.progress = { ...meta.epochProgress };
    this.lastCheckpointStep = meta.step;
    this.resumed = { file, meta, path: resume.path };
    this.sink.log(`resumed from ${resume.path} at step ${meta.step} (epoch ${Math.floor(meta.step / spe) + 1}, batch ${meta.step % spe})`);
  }

  private async join(): Promise<void> {
    const before = this.state.step;
    const { resync } = await this.collective.join();
    if (resync) {
      await this.state.sync();
      if (this.state.step !== before) this.sink.log(`took rank 0's state at step ${this.state.step} (was at ${before})`);
    }
    this.joined = true;
    if (this.resumed) {
      const { file, meta, path: p } = this.resumed;
      const line = this.collective.restoreCheckpointExtras(file, meta, p);
      if (line) this.sink.log(line);
      this.resumed = null;
    }
  }

  /** One optimizer step on this rank's shard of the global batch, reduced over the group. */
  private async trainStep(): Promise<void> {
    const { setup, state } = this;
    const { rank, worldSize } = this.collective.group();
    const s = state.step;
    const spe = setup.stepsPerEpoch;
    if (s % spe === 0 && state.progress.seen === 0) this.epochStartMs = performance.now();
    setup.cursor.setState({ epoch: Math.floor(s / spe), step: s % spe });
    const batch = setup.cursor.next();
    const s0 = performance.now();
    const global = batch.indices.length;
    const mine = shardIndices(batch.indices, rank, worldSize);
    const reduction = this.collective.beginStep(s, worldSize === 1 ? 1 : mine.length / global);
    let grads: tf.NamedTensorMap | null = null;
    let metrics: StepMetrics = { lossSum: 0, correct: 0 };
    try {
      if (mine.length > 0) {
        const { x, labels } = this.shardBatch(batch, mine, rank, worldSize);
        const compute = () => computeGradients(setup.model, x, labels, setup.config.train.labelSmoothing);
        const g = reduction.hook ? withGradientHook(reduction.hook, compute) : compute();
        x.dispose();
        grads = g.grads;
        metrics = { lossSum: g.loss * mine.length, correct: g.correct };
      }
      const reduced = await reduction.finish(grads, metrics);
      let applied: boolean;
      try {
        applied = this.update(reduced);
      } finally {
        reduced.dispose();
      }
      if (applied) {
        state.progress.lossSum += reduced.metrics.lossSum;
        state.progress.correct += reduced.metrics.correct;
        state.progress.seen += global;
      }
    } finally {
      if (grads) tf.dispose(grads);
    }
    this.reportStep(performance.now() - s0, mine.length);
  }

  /**
   * Applies the step's reduced gradients, unless its loss or a gradient is NaN or ±Inf: then
   * the run diverged (DivergedError), or with `onNonFinite: skip` the step is skipped (false):
   * no update, moments as they were, BatchNorm statistics and epoch sums put back, the step
   * counted. Every rank decides alike (the group reduces the count of ranks that found one).
   * The loss costs one test; gradients are scanned before the update only under `skip`: when
   * failing, the fused AdamW reports what it met, at no cost, and an update that makes a
   * parameter or moment NaN or ±Inf (beyond any skipping) ends the run either way.
   */
  private update(reduced: ReducedStep): boolean {
    const { optimizer, schedule } = this.setup;
    const problem = this.nonFiniteInput(reduced);
    if (problem && this.onNonFinite === 'skip') {
      this.state.restore();
      optimizer.skipStep();
      this.skippedInEpoch++;
      this.sink.log(`step ${optimizer.step}: skipped: ${problem.what}${problem.where ? ` (${problem.where})` : ''}`);
      return false;
    }
    if (problem) throw this.diverged(problem.what, problem.where);
    const report = optimizer.apply(reduced.grads, lrFactor(optimizer.step, schedule));
    if (report) throw this.diverged(`${report.what} is ${formatValue(report.value)}`, `${report.param}, element ${report.index}`, -1);
    return true;
  }

  /** The step's NaN or ±Inf loss or gradient, if any (gradients scanned only under `skip`, see `update`). */
  private nonFiniteInput(reduced: ReducedStep): { what: string; where?: string } | null {
    const nf = reduced.nonFinite;
    if (nf && nf.ranks > 0) {
      if (nf.here) return { what: nf.here, where: `rank ${this.collective.group().rank}` };
      return { what: 'a loss or gradient is NaN or Inf', where: `${nf.ranks} other rank(s)` };
    }
    const loss = reduced.metrics.lossSum;
    if (!Number.isFinite(loss)) return { what: `loss is ${formatValue(loss)}` };
    if (this.onNonFinite !== 'skip') return null;
    const bad = firstNonFiniteGradient(reduced.grads);
    return bad && { what: `gradient is ${formatValue(bad.value)}`, where: `${bad.name}, element ${bad.index}` };
  }

  /** `diverged: loss is NaN at epoch 2 step 31 (where)`; `offset`: the step's number less the optimizer's count. */
  private diverged(what: string, where?: string, offset = 0): DivergedError {
    const step = this.state.step + 1 + offset;
    const epoch = Math.floor((step - 1) / this.setup.stepsPerEpoch) + 1;
    return new DivergedError(`diverged: ${what} at epoch ${epoch} step ${step}${where ? ` (${where})` : ''}`);
  }

  /** This rank's inputs and labels. Augmentation draws run over the whole batch in order: build it all, keep the shard. */
  private shardBatch(batch: Batch, mine: Uint32Array, rank: number, worldSize: number): { x: tf.Tensor4D; labels: Int32Array } {
    const { setup } = this;
    const aug = setup.config.train.augment;
    const shape = setup.model.inputShape;
    if (!aug.hflip && aug.shiftPixels === 0) return makeBatch(setup.train, mine, setup.norm, shape);
    const full = makeBatch(setup.train, batch.indices, setup.norm, shape, {
      ...aug,
      rng: Rng.derive(setup.config.seed, 'augment', batch.epoch, batch.step),
    });
    if (worldSize === 1) return full;
    const per = shape[0] * shape[1] * shape[2];
    const { start, end } = shardRange(batch.indices.length, rank, worldSize);
    const x = tf.tensor4d((full.x.dataSync() as Float32Array).slice(start * per, end * per), [end - start, ...shape]);
    full.x.dispose();
    return { x, labels: full.labels.slice(start, end) };
  }

  private reportStep(ms: number, samples: number): void {
    const { progress } = this.state;
    const done = this.state.step;
    const spe = this.setup.stepsPerEpoch;
    const elapsedS = (performance.now() - this.epochStartMs) / 1000;
    this.sink.step({
      step: done,
      epoch: Math.floor((done - 1) / spe) + 1,
      stepInEpoch: ((done - 1) % spe) + 1,
      stepsPerEpoch: spe,
      seconds: ms / 1000,
      samples,
      epochLoss: progress.lossSum / progress.seen,
      epochAccuracy: progress.correct / progress.seen,
      epochSamplesPerS: elapsedS > 0 ? progress.seen / elapsedS : 0,
    });
  }

  /** Checkpoints, evaluation and the epoch's report after a step (evaluation and files on rank 0 only). */
  private async afterStep(stepEndMs: number): Promise<void> {
    const done = this.state.step;
    const everyK = this.setup.config.train.checkpointEverySteps;
    const epochEnd = done % this.setup.stepsPerEpoch === 0;
    const checkpointHere = epochEnd || (everyK > 0 && done % everyK === 0);
    // every rank takes part in gathering the extras at a checkpoint step; a failure here leaves
    // the checkpoint without them (a resume then starts them afresh)
    const extras = checkpointHere
      ? await this.collective.gatherCheckpointExtras().catch((err: Error) => {
          this.sink.log(`step ${done}: checkpoint extras not gathered (${err.message})`);
          return null;
        })
      : null;
    if (epochEnd && this.state.progress.seen === 0) {
      throw this.diverged(`every step of the epoch was skipped (train.onNonFinite: skip)`, undefined, -1);
    }
    if (this.collective.group().rank !== 0) {
      if (epochEnd) this.endEpochSums();
      return;
    }
    if (epochEnd) await this.endEpoch(done, stepEndMs, extras);
    else if (checkpointHere) await this.writeCheckpoint(stepStem(done), extras);
  }

  private async endEpoch(done: number, stepEndMs: number, extras: CheckpointExtras | null): Promise<void> {
    const { setup } = this;
    const { config } = setup;
    const epoch = done / setup.stepsPerEpoch;
    const epochTimeS = (stepEndMs - this.epochStartMs) / 1000;
    const test =
      config.train.evalEveryEpoch || epoch === config.train.epochs ? evaluate(setup.model, setup.dataset.test, setup.norm) : null;
    const p = this.state.progress;
    const trainLoss = p.lossSum / p.seen;
    // nothing NaN or ±Inf is reported (the store's metric columns are numbers)
    if (!Number.isFinite(trainLoss)) throw this.diverged(`the epoch's train loss is ${formatValue(trainLoss)}`, undefined, -1);
    if (test && !Number.isFinite(test.loss)) throw this.diverged(`test loss is ${formatValue(test.loss)}`, undefined, -1);
    await this.writeCheckpoint(epochStem(epoch), extras);
    await this.sink.epoch({
      epoch,
      epochs: config.train.epochs,
      steps: done,
      trainLoss,
      trainAcc: p.correct / p.seen,
      test,
      lr: config.train.optimizer.lr * lrFactor(done, setup.schedule),
      samplesPerS: p.seen / epochTimeS,
      epochTimeS,
      skippedSteps: this.skippedInEpoch,
    });
    this.endEpochSums();
  }

  private endEpochSums(): void {
    this.state.progress = { lossSum: 0, correct: 0, seen: 0 };
    this.skippedInEpoch = 0;
  }

  private async writeCheckpoint(stem: string, extras: CheckpointExtras | null = null): Promise<void> {
    const { setup } = this;
    const s = this.state.step;
    const spe = setup.stepsPerEpoch;
    const { generation, worldSize } = this.collective.group();
    const meta: CheckpointMeta = {
      runId: this.o.runId,
      epoch: Math.floor(s / spe),
      step: s,
      cursor: { epoch: Math.floor(s / spe), step: s % spe },
      configHash: this.hash,
      arch: setup.config.model.arch,
      precision: setup.config.model.precision,
      inputShape: setup.model.inputShape,
      numClasses: setup.model.numClasses,
      normalization: { mode: setup.norm.mode, scale: [...setup.norm.scale], offset: [...setup.norm.offset] },
      generation,
      worldSize,
      ...(s % spe !== 0 ? { epochProgress: { ...this.state.progress } } : {}),
      ...extras?.meta,
    };
    const store = this.o.checkpointStore;
    const file = store ? store.locationOf(this.o.runId, stem) : path.join(this.o.checkpointDir, `${stem}.safetensors`);
    if (!store) mkdirSync(this.o.checkpointDir, { recursive: true });
    const target = store ? { store, location: file } : file;
    const { sha256, bytes } = await saveCheckpoint(target, setup.model, setup.optimizer, meta, extras?.tensors ?? {}).catch(
      (e: unknown) => {
        // a finite loss and update with a state gone NaN or ±Inf (BatchNorm statistics overflowed)
        throw e instanceof NonFiniteStateError ? this.diverged(e.what, 'checkpoint not written', -1) : e;
      },
    );
    this.lastCheckpointStep = s;
    await this.sink.checkpoint({ path: file, step: s, epoch: meta.epoch, sha256, bytes });
  }

  /** A stopped run keeps its last step boundary: rank 0 checkpoints it on the way out (once joined, past the last checkpoint). */
  private async checkpointOnStop(): Promise<void> {
    const s = this.state.step;
    if (this.collective.group().rank !== 0 || !this.joined || s <= this.lastCheckpointStep || s === 0) return;
    await this.writeCheckpoint(stepStem(s)).catch((e: Error) => this.sink.log(`checkpoint on stop failed: ${e.message}`));
  }

  private dumpWeights(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const params: Record<string, number[]> = {};
    for (const p of this.setup.model.params()) params[p.name] = Array.from(p.variable.dataSync() as Float32Array);
    const { rank, worldSize, generation } = this.collective.group();
    writeFileSync(
      path.join(dir, `weights-rank${rank}.json`),
      JSON.stringify({ runId: this.o.runId, steps: this.state.step, worldSize, generation, params }),
    );
  }
}
