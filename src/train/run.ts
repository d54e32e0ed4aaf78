// `bnn train`: one process, no broker. Runs the config end to end and records it in the store.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import type { RunConfig } from '../config/index.js';
import { configHash } from '../config/index.js';
import { BatchCursor, computeNormalization, loadDataset, stratifiedSubset, type DatasetSpec } from '../data/index.js';
import { buildModel, fp32SizeBytes, type Model, type ModelSpec } from '../bnn/models.js';
import { initEngine, type EngineInfo } from '../engine/select.js';
import { AdamW } from '../optim/adamw.js';
import { lrFactor, type ScheduleOptions } from '../optim/schedule.js';
import {
  addCheckpoint, addEpochMetrics, createRun, finishRun, markRunning, openStore, type Store,
} from '../store/index.js';
import { evaluate, makeBatch, trainStep } from './trainer.js';
import { Rng } from '../util/rng.js';
import { saveCheckpoint } from './state.js';
import { createEpochProgress } from '../cli/progress.js';
import { packedSizeBytes } from '../export/packed.js';
import { RunTelemetry } from '../telemetry/recorder.js';

export interface TrainOptions {
  json: boolean;
  quiet: boolean;
  configPath?: string;
}

export interface TrainSummary {
  runId: string;
  name: string;
  precision: string;
  arch: string;
  seed: number;
  backend: string;
  threads: number;
  epochs: number;
  finalTestAcc: number | null;
  bestTestAcc: number | null;
  samplesPerS: number;
  wallTimeS: number;
  modelSizeBytes: number;
  packedSizeBytes: number | null;
  status: 'COMPLETED' | 'CANCELLED' | 'FAILED';
  /** Energy of the run in joules (null if it could not be measured or estimated). */
  energyJ: number | null;
  /** Where energyJ came from: `rapl`, `nvml+rapl`, ... or `estimate` (CPU time × assumed watts per core). */
  energySource: string | null;
}

export function modelSpecFromConfig(config: RunConfig): ModelSpec {
  const m = config.model;
  return {
    arch: m.arch, precision: m.precision, hidden: m.hidden, widthMultiplier: m.widthMultiplier,
    binarizeFirstLayerInput: m.binarizeFirstLayerInput, binarizeLastLayer: m.binarizeLastLayer,
    batchNorm: m.batchNorm, bnMomentum: m.bnMomentum, bnEpsilon: m.bnEpsilon, dropout: m.dropout, inputDropout: m.inputDropout,
  };
}

export function datasetSpecFromConfig(config: RunConfig): DatasetSpec {
  const d = config.dataset;
  if (d.name === 'synthetic') return { name: 'synthetic', ...d.synthetic, seed: config.seed } as DatasetSpec;
  return d.dir ? { name: d.name, dir: d.dir } : { name: d.name };
}

export function scheduleFromConfig(config: RunConfig, stepsPerEpoch: number): ScheduleOptions {
  const s = config.train.schedule;
  return {
    name: s.name, minLrFraction: s.minLrFraction, warmRestarts: s.warmRestarts,
    restartPeriodSteps: s.restartPeriodEpochs * stepsPerEpoch, restartMultiplier: s.restartMultiplier,
    totalSteps: config.train.epochs * stepsPerEpoch,
  };
}

export function optimizerFromConfig(config: RunConfig, model: Model): AdamW {
  const o = config.train.optimizer;
  const first = model.layers.find((l) => l.params().length > 0);
  const firstParams = new Set(first?.params().map((p) => p.name));
  const params = model.params().map((p) =>
    o.firstLayerGroup === 'fp32' && firstParams.has(p.name) ? { ...p, group: 'fp32' as const } : p);
  return new AdamW(params, {
    lr: o.lr, binaryLr: o.binaryLr, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon,
    weightDecay: o.weightDecay, latentClip: config.train.latentClip,
  });
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Trains `config` in this process and records the run. Returns the exit code:
 * 0 completed, 1 failed, 130 cancelled by Ctrl-C.
 */
export async function runTraining(config: RunConfig, opts: TrainOptions): Promise<{ exitCode: number; summary?: TrainSummary }> {
  const say = (line: string) => { if (!opts.quiet && !opts.json) process.stderr.write(`${line}\n`); };
  const engine: EngineInfo = await initEngine({
    backend: config.engine.backend, threads: config.engine.threads, warn: (m) => process.stderr.write(`${m}\n`),
  });
  const ds = await loadDataset(datasetSpecFromConfig(config));
  const train = config.dataset.subset < 1 ? stratifiedSubset(ds.train, config.dataset.subset, config.seed) : ds.train;
  const norm = computeNormalization({ shape: ds.shape, train }, config.dataset.normalize);
  const model = buildModel(modelSpecFromConfig(config), ds.shape, ds.numClasses, config.seed);
  const optimizer = optimizerFromConfig(config, model);
  const cursor = new BatchCursor({ n: train.n, batchSize: config.train.batchSize, seed: config.seed });
  const schedule = scheduleFromConfig(config, cursor.stepsPerEpoch);

  const store: Store = openStore(config.store);
  const run = createRun(store.db, { config, configPath: opts.configPath });
  markRunning(store.db, run.id, { backend: engine.backend, threads: engine.threads });
  const telemetry = await RunTelemetry.start(store.db, run.id, { warn: (m) => process.stderr.write(`${m}\n`) });
  const ckptDir = path.resolve(config.checkpointDir, run.id);
  mkdirSync(ckptDir, { recursive: true });
  say(`bnn: run ${run.id} (${config.name}): ${config.model.arch} ${config.model.precision} on ${ds.name} ` +
    `(${train.n} train / ${ds.test.n} test), backend ${engine.backend}${engine.kernel ? ` [${engine.kernel}]` : ''}, ` +
    `${engine.threads} thread(s), seed ${config.seed}`);

  let cancelled = false;
  const onSigint = () => { cancelled = true; };
  process.once('SIGINT', onSigint);
  const hash = configHash(config);
  const normMeta = { mode: norm.mode, scale: [...norm.scale], offset: [...norm.offset] };
  const t0 = performance.now();
  let trainSeconds = 0;
  let trainSamples = 0;
  let finalTestAcc: number | null = null;
  let bestTestAcc: number | null = null;
  let status: TrainSummary['status'] = 'COMPLETED';
  try {
    for (let epoch = 1; epoch <= config.train.epochs && !cancelled; epoch++) {
      const progress = createEpochProgress({
        epoch, epochs: config.train.epochs, total: cursor.stepsPerEpoch, enabled: !opts.quiet && !opts.json,
      });
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const e0 = performance.now();
      for (const batch of cursor.remainingInEpoch()) {
        const aug = config.train.augment;
        const augment = aug.hflip || aug.shiftPixels > 0
          ? { ...aug, rng: Rng.derive(config.seed, 'augment', batch.epoch, batch.step) } : undefined;
        const { x, labels } = makeBatch(train, batch.indices, norm, model.inputShape, augment);
        const r = trainStep(model, optimizer, x, labels, lrFactor(optimizer.step, schedule), config.train.labelSmoothing);
        x.dispose();
        telemetry.tick();
        lossSum += r.loss * r.samples;
        correct += r.correct;
        seen += r.samples;
        const elapsed = (performance.now() - e0) / 1000;
        progress.update(batch.step + 1, { loss: lossSum / seen, accuracy: correct / seen, samplesPerS: seen / elapsed });
        if (config.train.checkpointEverySteps > 0 && optimizer.step % config.train.checkpointEverySteps === 0) {
          await checkpoint(store, ckptDir, `step-${String(optimizer.step).padStart(8, '0')}`, model, optimizer,
            { runId: run.id, epoch: epoch - 1, step: optimizer.step, cursor: cursor.getState(), configHash: hash,
              arch: config.model.arch, precision: config.model.precision, normalization: normMeta, inputShape: model.inputShape, numClasses: model.numClasses });
        }
        if (cancelled) break;
      }
      progress.stop();
      const epochSeconds = (performance.now() - e0) / 1000;
      trainSeconds += epochSeconds;
      trainSamples += seen;
      if (cancelled) break;
      const test = config.train.evalEveryEpoch || epoch === config.train.epochs ? evaluate(model, ds.test, norm) : null;
      if (test) {
        finalTestAcc = test.accuracy;
        bestTestAcc = Math.max(bestTestAcc ?? 0, test.accuracy);
      }
      addEpochMetrics(store.db, run.id, {
        epoch, trainLoss: lossSum / seen, trainAcc: correct / seen, testLoss: test?.loss ?? null,
        testAcc: test?.accuracy ?? null, lr: config.train.optimizer.lr * lrFactor(optimizer.step, schedule),
        samplesPerS: seen / epochSeconds, epochTimeS: epochSeconds,
      });
      await checkpoint(store, ckptDir, `epoch-${String(epoch).padStart(4, '0')}`, model, optimizer,
        { runId: run.id, epoch, step: optimizer.step, cursor: cursor.getState(), configHash: hash,
          arch: config.model.arch, precision: config.model.precision, normalization: normMeta, inputShape: model.inputShape, numClasses: model.numClasses });
      await telemetry.epochEnd(epoch);
      say(`epoch ${epoch}/${config.train.epochs}  train loss ${(lossSum / seen).toFixed(4)} acc ${pct(correct / seen)}` +
        (test ? `  test loss ${test.loss.toFixed(4)} acc ${pct(test.accuracy)}` : '') +
        `  ${Math.round(seen / epochSeconds).toLocaleString('en-US')} samples/s  ${epochSeconds.toFixed(1)} s`);
    }
    if (cancelled) status = 'CANCELLED';
  } catch (err) {
    await telemetry.finish();
    finishRun(store.db, run.id, 'FAILED', { error: String((err as Error).message ?? err) });
    store.close();
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  const wallTimeS = (performance.now() - t0) / 1000;
  const energy = await telemetry.finish();
  const summary: TrainSummary = {
    runId: run.id, name: config.name, precision: config.model.precision, arch: config.model.arch, seed: config.seed,
    backend: engine.backend, threads: engine.threads, epochs: config.train.epochs, finalTestAcc, bestTestAcc,
    samplesPerS: trainSeconds > 0 ? trainSamples / trainSeconds : 0, wallTimeS,
    modelSizeBytes: fp32SizeBytes(model), packedSizeBytes: packedSizeBytes(model), status,
    energyJ: energy.joules, energySource: energy.source,
  };
  finishRun(store.db, run.id, status, {
    finalTestAcc, bestTestAcc, modelSizeBytes: summary.modelSizeBytes, packedSizeBytes: summary.packedSizeBytes,
    wallTimeS, samplesPerS: summary.samplesPerS, error: status === 'CANCELLED' ? 'interrupted (SIGINT)' : null,
  });
  store.close();
  model.dispose();
  if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else if (!opts.quiet) {
    process.stdout.write(status === 'COMPLETED'
      ? `final test accuracy: ${finalTestAcc === null ? 'n/a' : pct(finalTestAcc)} (run ${run.id}, ${config.model.precision}, ` +
        `seed ${config.seed}, ${Math.round(summary.samplesPerS).toLocaleString('en-US')} samples/s, ${wallTimeS.toFixed(1)} s)\n`
      : `run ${run.id} cancelled after ${wallTimeS.toFixed(1)} s; final test accuracy: ${finalTestAcc === null ? 'n/a' : pct(finalTestAcc)}\n`);
  }
  return { exitCode: status === 'COMPLETED' ? 0 : 130, summary };
}

async function checkpoint(store: Store, dir: string, stem: string, model: Model, optimizer: AdamW,
  meta: Parameters<typeof saveCheckpoint>[3]): Promise<void> {
  const file = path.join(dir, `${stem}.safetensors`);
  const { sha256, bytes } = await saveCheckpoint(file, model, optimizer, meta);
  addCheckpoint(store.db, { runId: meta.runId, epoch: meta.epoch, step: meta.step, path: file, sha256, bytes });
}
