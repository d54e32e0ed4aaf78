// One rank's data-parallel training: the same data, model, optimizer and schedule as `bnn train`
// (same seed → identical initial weights on every rank); per step each rank takes its contiguous
// shard of the global batch, weights its mean gradient by shard/global size, and the all-reduce
// sums in rank order, so every rank applies the full-batch mean gradient.
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from '../src/config/index.js';
import { BatchCursor, computeNormalization, loadDataset, shardIndices, shardRange, stratifiedSubset } from '../src/data/index.js';
import { buildModel } from '../src/bnn/models.js';
import { lrFactor } from '../src/optim/schedule.js';
import { computeGradients, evaluate, makeBatch } from '../src/train/trainer.js';
import { datasetSpecFromConfig, modelSpecFromConfig, optimizerFromConfig, scheduleFromConfig } from '../src/train/run.js';
import { Rng } from '../src/util/rng.js';
import type { MetricsReport } from '../src/rpc/index.js';
import { flatLayout, flattenScaled, unflatten } from './flat.js';
import { gradientVector } from '../src/collective/gradient-buckets.js';

export interface RankAssignment {
  runId: string;
  config: RunConfig;
  rank: number;
  worldSize: number;
  generation: number;
}

export interface RankDeps {
  /** Sums `v` over the group in rank order (every rank gets the same result). */
  allreduceSum(v: Float32Array): Promise<Float32Array>;
  /** Sends metrics to the coordinator. */
  report(m: Partial<MetricsReport>): Promise<void>;
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

/** Trains every epoch of the assignment; rank 0 evaluates and reports each epoch. */
export async function trainRank(a: RankAssignment, deps: RankDeps): Promise<RankResult> {
  const { config, rank, worldSize } = a;
  const ds = await loadDataset(datasetSpecFromConfig(config));
  const train = config.dataset.subset < 1 ? stratifiedSubset(ds.train, config.dataset.subset, config.seed) : ds.train;
  const norm = computeNormalization({ shape: ds.shape, train }, config.dataset.normalize);
  const model = buildModel(modelSpecFromConfig(config), ds.shape, ds.numClasses, config.seed);
  try {
    const optimizer = optimizerFromConfig(config, model);
    const cursor = new BatchCursor({ n: train.n, batchSize: config.train.batchSize, seed: config.seed });
    const schedule = scheduleFromConfig(config, cursor.stepsPerEpoch);
    const layout = flatLayout(model.params());
    // Gradient, then this rank's (loss · samples) and correct count, summed along with it.
    // bnn:buckets (src/collective/gradient-buckets.ts): reduced one bucket per tensor + 1 per metric
    const vec = gradientVector(layout.params.map((p) => p.variable.size), 2);
    const per = model.inputShape[0] * model.inputShape[1] * model.inputShape[2];
    let finalTestAcc: number | null = null;
    for (let epoch = 1; epoch <= config.train.epochs; epoch++) {
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const e0 = performance.now();
      for (const batch of cursor.remainingInEpoch()) {
        deps.checkStop();
        const s0 = performance.now();
        const global = batch.indices.length;
        const mine = shardIndices(batch.indices, rank, worldSize);
        vec.fill(0);
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
          const g = computeGradients(model, x, labels, config.train.labelSmoothing);
          x.dispose();
          flattenScaled(layout, g.grads, worldSize === 1 ? 1 : mine.length / global, vec);
          tf.dispose(g.grads);
          vec[layout.length] = g.loss * mine.length;
          vec[layout.length + 1] = g.correct;
        }
        const sum = await deps.allreduceSum(vec);
        const grads = unflatten(layout, sum);
        try {
          optimizer.apply(grads, lrFactor(optimizer.step, schedule));
        } finally {
          tf.dispose(grads);
        }
        lossSum += sum[layout.length]!;
        correct += sum[layout.length + 1]!;
        seen += global;
        deps.onStep?.((performance.now() - s0) / 1000, mine.length, optimizer.step);
      }
      const epochTimeS = (performance.now() - e0) / 1000;
      if (rank === 0) {
        const test = config.train.evalEveryEpoch || epoch === config.train.epochs ? evaluate(model, ds.test, norm) : null;
        if (test) finalTestAcc = test.accuracy;
        await deps.report({
          epoch, train_loss: lossSum / seen, train_acc: correct / seen, test_loss: test ? test.loss : -1, test_acc: test ? test.accuracy : -1,
          lr: config.train.optimizer.lr * lrFactor(optimizer.step, schedule), samples_per_s: seen / epochTimeS, epoch_time_s: epochTimeS,
          steps: optimizer.step,
        });
        deps.log(`epoch ${epoch}/${config.train.epochs} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(4)}` +
          (test ? ` test acc ${test.accuracy.toFixed(4)}` : ''));
      }
    }
    if (deps.dumpWeightsDir) {
      mkdirSync(deps.dumpWeightsDir, { recursive: true });
      const params: Record<string, number[]> = {};
      for (const p of model.params()) params[p.name] = Array.from(p.variable.dataSync() as Float32Array);
      writeFileSync(join(deps.dumpWeightsDir, `weights-rank${rank}.json`), JSON.stringify({ runId: a.runId, steps: optimizer.step, worldSize, params }));
    }
    return { steps: optimizer.step, finalTestAcc };
  } finally {
    model.dispose();
  }
}
