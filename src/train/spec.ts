// The run config turned into what the library builds from it: the model, data set, schedule
// and optimizer specs. No I/O and no store: both drivers (`bnn train`, the cluster worker)
// and the exporter use these.
import type { RunConfig } from '../config/index.js';
import type { DatasetSpec } from '../data/index.js';
import type { Model, ModelSpec } from '../bnn/models.js';
import { AdamW } from '../optim/adamw.js';
import type { ScheduleOptions } from '../optim/schedule.js';

export function modelSpecFromConfig(config: RunConfig): ModelSpec {
  const m = config.model;
  return {
    arch: m.arch,
    precision: m.precision,
    hidden: m.hidden,
    widthMultiplier: m.widthMultiplier,
    binarizeFirstLayerInput: m.binarizeFirstLayerInput,
    binarizeLastLayer: m.binarizeLastLayer,
    batchNorm: m.batchNorm,
    bnMomentum: m.bnMomentum,
    bnEpsilon: m.bnEpsilon,
    dropout: m.dropout,
    inputDropout: m.inputDropout,
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
    name: s.name,
    minLrFraction: s.minLrFraction,
    warmRestarts: s.warmRestarts,
    restartPeriodSteps: s.restartPeriodEpochs * stepsPerEpoch,
    restartMultiplier: s.restartMultiplier,
    totalSteps: config.train.epochs * stepsPerEpoch,
  };
}

export function optimizerFromConfig(config: RunConfig, model: Model): AdamW {
  const o = config.train.optimizer;
  const first = model.layers.find((l) => l.params().length > 0);
  const firstParams = new Set(first?.params().map((p) => p.name));
  const params = model
    .params()
    .map((p) => (o.firstLayerGroup === 'fp32' && firstParams.has(p.name) ? { ...p, group: 'fp32' as const } : p));
  return new AdamW(params, {
    lr: o.lr,
    binaryLr: o.binaryLr,
    beta1: o.beta1,
    beta2: o.beta2,
    epsilon: o.epsilon,
    weightDecay: o.weightDecay,
    latentClip: config.train.latentClip,
  });
}
