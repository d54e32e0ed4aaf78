// Everything one training run is made of, built from its config the same way on every rank and
// in every driver: data (the class-stratified subset, its normalisation), model (seeded, so
// every rank starts from the same weights), optimizer, batch cursor and learning-rate schedule.
import type { RunConfig } from '../config/index.js';
import {
  BatchCursor,
  computeNormalization,
  loadDataset,
  stratifiedSubset,
  type Dataset,
  type Normalization,
  type Split,
} from '../data/index.js';
import { buildModel, type Model } from '../bnn/models.js';
import type { AdamW } from '../optim/adamw.js';
import type { ScheduleOptions } from '../optim/schedule.js';
import { datasetSpecFromConfig, modelSpecFromConfig, optimizerFromConfig, scheduleFromConfig } from './spec.js';

export interface TrainingSetup {
  readonly config: RunConfig;
  readonly dataset: Dataset;
  /** The training split actually trained on (`dataset.subset` applied). */
  readonly train: Split;
  readonly norm: Normalization;
  readonly model: Model;
  readonly optimizer: AdamW;
  readonly cursor: BatchCursor;
  readonly schedule: ScheduleOptions;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
}

/** Loads the data and builds model, optimizer, cursor and schedule; the caller disposes `model`. */
export async function prepareTraining(config: RunConfig): Promise<TrainingSetup> {
  const dataset = await loadDataset(datasetSpecFromConfig(config));
  const train = config.dataset.subset < 1 ? stratifiedSubset(dataset.train, config.dataset.subset, config.seed) : dataset.train;
  const norm = computeNormalization({ shape: dataset.shape, train }, config.dataset.normalize);
  const model = buildModel(modelSpecFromConfig(config), dataset.shape, dataset.numClasses, config.seed);
  const optimizer = optimizerFromConfig(config, model);
  const cursor = new BatchCursor({ n: train.n, batchSize: config.train.batchSize, seed: config.seed });
  const stepsPerEpoch = cursor.stepsPerEpoch;
  return {
    config,
    dataset,
    train,
    norm,
    model,
    optimizer,
    cursor,
    stepsPerEpoch,
    schedule: scheduleFromConfig(config, stepsPerEpoch),
    totalSteps: config.train.epochs * stepsPerEpoch,
  };
}
