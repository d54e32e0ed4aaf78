import { z } from 'zod';
import { COMPRESSIONS } from '../collective/compression.js';

/**
 * The run config: one YAML file per experiment, every field optional (defaults below).
 * Objects are strict so a misspelt key is an error, not a silently ignored setting.
 * Fields that only apply to one choice (`dataset.synthetic`, `model.hidden`,
 * `train.schedule.restart*`) are always present after parsing and ignored otherwise,
 * so a `--set model.arch=...` override never has to delete keys.
 */

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;
export const NORMALIZATIONS = ['none', 'unit', 'standard', 'pm1'] as const;
export const ARCHS = ['mlp', 'vgg-small', 'resnet18'] as const;
export const PRECISIONS = ['fp32', 'int8', 'binary', 'binary-weights', 'xnor', 'rsign'] as const;
export const OPTIMIZERS = ['adamw'] as const;
export const SCHEDULES = ['cosine', 'constant'] as const;
export const BACKENDS = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'] as const;

export type DatasetName = (typeof DATASET_NAMES)[number];
export type Normalization = (typeof NORMALIZATIONS)[number];
export type Arch = (typeof ARCHS)[number];
export type Precision = (typeof PRECISIONS)[number];
export type BackendName = (typeof BACKENDS)[number];

const positiveInt = () => z.int().min(1);
const nonNegativeInt = () => z.int().min(0);

export const syntheticSchema = z.strictObject({
  /** Training examples generated. */
  trainSize: positiveInt().default(2000),
  /** Test examples generated. */
  testSize: positiveInt().default(500),
  /** Example shape [height, width, channels]. */
  shape: z.tuple([positiveInt(), positiveInt(), positiveInt()]).default([8, 8, 1]),
  numClasses: z.int().min(2).default(4),
});

export const datasetSchema = z.strictObject({
  name: z.enum(DATASET_NAMES).default('fashion-mnist'),
  /** Data directory override; null: the data set's default cache directory. */
  dir: z.string().min(1).nullable().default(null),
  /** Class-stratified fraction of the training set, in (0, 1]. */
  subset: z.number().gt(0).lte(1).default(1),
  normalize: z.enum(NORMALIZATIONS).default('standard'),
  /** Used only when `name` is `synthetic`. */
  synthetic: syntheticSchema.prefault({}),
});

export const modelSchema = z.strictObject({
  arch: z.enum(ARCHS).default('mlp'),
  /** Hidden layer widths; used only by `mlp`. */
  hidden: z.array(positiveInt()).default([2048, 2048]),
  widthMultiplier: z.number().gt(0).default(1),
  precision: z.enum(PRECISIONS).default('binary'),
  binarizeFirstLayerInput: z.boolean().default(false),
  binarizeLastLayer: z.boolean().default(false),
  /** BatchNorm before each activation binarization. */
  batchNorm: z.boolean().default(true),
  bnMomentum: z.number().gte(0).lt(1).default(0.9),
  bnEpsilon: z.number().gt(0).default(0.001),
  /** Dropout rate on the classifier's input during training; 0 disables. */
  dropout: z.number().gte(0).lt(1).default(0),
  /** Dropout rate on the model's input (pixels) during training; 0 disables. */
  inputDropout: z.number().gte(0).lt(1).default(0),
});

export const optimizerSchema = z.strictObject({
  name: z.enum(OPTIMIZERS).default('adamw'),
  /** Learning rate of the fp32 parameter group. */
  lr: z.number().gt(0).default(0.001),
  /** Learning rate of binary layers' latent weights (paper Table 1). */
  binaryLr: z.number().gt(0).default(0.01),
  /**
   * Learning-rate group of the first layer's (binary) latent weights. The first layer keeps a
   * float input, so it can be treated as one of the higher-precision layers (`fp32`).
   */
  firstLayerGroup: z.enum(['binary', 'fp32']).default('binary'),
  /** Decoupled weight decay. */
  weightDecay: z.number().gte(0).default(0),
  beta1: z.number().gte(0).lt(1).default(0.9),
  beta2: z.number().gte(0).lt(1).default(0.999),
  epsilon: z.number().gt(0).default(1e-7),
});

export const scheduleSchema = z.strictObject({
  name: z.enum(SCHEDULES).default('cosine'),
  /** Learning-rate floor as a fraction of the base learning rate. */
  minLrFraction: z.number().gte(0).lte(1).default(0),
  /** SGDR: restart the cosine every `restartPeriodEpochs * restartMultiplier^k` epochs. */
  warmRestarts: z.boolean().default(false),
  restartPeriodEpochs: positiveInt().default(5),
  restartMultiplier: positiveInt().default(1),
});

export const trainSchema = z.strictObject({
  epochs: positiveInt().default(15),
  batchSize: positiveInt().default(256),
  optimizer: optimizerSchema.prefault({}),
  schedule: scheduleSchema.prefault({}),
  /** Clip latent weights to [-c, c] after each step; 0 disables. */
  latentClip: z.number().gte(0).default(1),
  /** Label smoothing of the cross-entropy targets, in [0, 1). */
  labelSmoothing: z.number().gte(0).lt(1).default(0),
  /** Training-time augmentation, drawn deterministically from (seed, epoch, step). */
  augment: z
    .strictObject({
      /** Mirror each image left-right with probability 1/2. */
      hflip: z.boolean().default(false),
      /** Translate each image by up to this many pixels in x and y (zero-filled, in raw pixel space). */
      shiftPixels: nonNegativeInt().max(8).default(0),
    })
    .prefault({}),
  evalEveryEpoch: z.boolean().default(true),
  /**
   * Wire format of the cluster's gradient all-reduce (`bnn launch`; ignored by single-process
   * `bnn train`): fp32 `none`, half precision, or 1-bit signs with error feedback.
   */
  compression: z.enum(COMPRESSIONS).default('none'),
  /** Checkpoint every N optimizer steps; 0: only at epoch end. */
  checkpointEverySteps: nonNegativeInt().default(0),
  /**
   * A step whose loss or gradient is NaN or ±Inf: `fail` (absent means fail) ends the run as
   * diverged; `skip` leaves the weights as they were and goes on, as mixed-precision loss
   * scalers do (skipped steps are logged and counted per epoch). A parameter or optimizer
   * moment that an update itself makes NaN or ±Inf ends the run either way. No default, so
   * configs written before the field existed keep their hash (and their checkpoints resume).
   */
  onNonFinite: z.enum(['fail', 'skip']).optional(),
  /**
   * Retention: the newest N checkpoints of the run are kept (absent means 3; at least 2, as a
   * resume that finds the newest one damaged falls back to the one before), plus the epoch
   * checkpoint of the epoch with the best test accuracy; older files are deleted once a newer
   * checkpoint is recorded. No default, so configs written before the field keep their hash.
   */
  keepCheckpoints: z.int().min(2).max(1_000_000).optional(),
});

/** `train.keepCheckpoints` when the config leaves it out. */
export const DEFAULT_KEEP_CHECKPOINTS = 3;

export const engineSchema = z.strictObject({
  backend: z.enum(BACKENDS).default('auto'),
  /** Worker threads for CPU backends; 0: all cores. */
  threads: nonNegativeInt().default(0),
});

/** Name used when neither the file nor a flag gives one and there is no file stem. */
export const DEFAULT_RUN_NAME = 'run';

export const runConfigSchema = z.strictObject({
  /** Run name; `loadConfig` defaults it to the config file's stem. */
  name: z.string().min(1).default(DEFAULT_RUN_NAME),
  tags: z.array(z.string().min(1)).default([]),
  seed: nonNegativeInt().default(1),
  dataset: datasetSchema.prefault({}),
  model: modelSchema.prefault({}),
  train: trainSchema.prefault({}),
  engine: engineSchema.prefault({}),
  /** Experiment database file; relative paths are resolved against the working directory. */
  store: z.string().min(1).default('./runs/bnn.db'),
  /** Directory for checkpoint files; relative to the working directory. */
  checkpointDir: z.string().min(1).default('./runs/checkpoints'),
  /**
   * Where the run's checkpoints are written: `local` (files under `checkpointDir`) or `nats` (the
   * JetStream object store of the cluster's NATS servers, bucket `bnn-checkpoints`: they outlive
   * a host). Absent: the coordinator's `--checkpoint-store` (default local); `bnn train` writes
   * local files. No default, so configs written before the field keep their hash.
   */
  checkpointStore: z.enum(['local', 'nats']).optional(),
  /** Replicas of the object store bucket when this run creates it; absent: min(3, NATS cluster size). */
  checkpointReplicas: z.int().min(1).max(5).optional(),
});

export type RunConfig = z.output<typeof runConfigSchema>;
/** What a YAML file may contain: every field optional. */
export type RunConfigInput = z.input<typeof runConfigSchema>;

/** A fresh config with every default applied. */
export function defaultRunConfig(): RunConfig {
  return runConfigSchema.parse({});
}
