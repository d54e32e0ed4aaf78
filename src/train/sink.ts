/**
 * Where the training loop's results go: the experiment database for `bnn train`
 * (store-sink.ts), RPC to the coordinator for a cluster worker (worker/report-sink.ts).
 * `step` is called on every rank, `epoch` and `checkpoint` on rank 0 only.
 */
import type { EvalResult } from './trainer.js';

/** After each optimizer step, on every rank. */
export interface StepReport {
  /** Optimizer steps done (1-based number of the step just taken). */
  step: number;
  /** 1-based epoch the step belongs to. */
  epoch: number;
  /** 1-based position of the step in its epoch. */
  stepInEpoch: number;
  stepsPerEpoch: number;
  /** Wall time of the step and the samples this rank computed in it. */
  seconds: number;
  samples: number;
  /** The epoch so far over the whole group: mean loss, accuracy, samples per second. */
  epochLoss: number;
  epochAccuracy: number;
  epochSamplesPerS: number;
}

/** An epoch's metrics (rank 0). */
export interface EpochReport {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Optimizer steps done. */
  steps: number;
  trainLoss: number;
  trainAcc: number;
  /** Null when the epoch was not evaluated (`train.evalEveryEpoch: false`). */
  test: EvalResult | null;
  /** Learning rate of the fp32 group at the epoch's end. */
  lr: number;
  samplesPerS: number;
  epochTimeS: number;
  /** Steps of the epoch skipped for a NaN or ±Inf loss or gradient (`train.onNonFinite: skip`). */
  skippedSteps: number;
}

/** A checkpoint file rank 0 wrote. */
export interface CheckpointRecord {
  path: string;
  step: number;
  /** Epochs completed. */
  epoch: number;
  sha256: string;
  bytes: number;
}

export interface TrainingSink {
  step(s: StepReport): void;
  epoch(e: EpochReport): Promise<void>;
  checkpoint(c: CheckpointRecord): Promise<void>;
  log(line: string): void;
}

/** Both sinks get everything, `a` first. */
export function teeSink(a: TrainingSink, b: TrainingSink): TrainingSink {
  return {
    step: (s) => {
      a.step(s);
      b.step(s);
    },
    epoch: async (e) => {
      await a.epoch(e);
      await b.epoch(e);
    },
    checkpoint: async (c) => {
      await a.checkpoint(c);
      await b.checkpoint(c);
    },
    log: (line) => {
      a.log(line);
      b.log(line);
    },
  };
}
