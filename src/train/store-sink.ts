/**
 * The results sink of `bnn train`: the run's row, epoch metrics, checkpoints, hardware and
 * energy go straight into the experiment database. (A cluster worker reports over RPC instead
 * and the coordinator writes the same rows; this module is never on a worker's import path.)
 */
import type { RunConfig } from '../config/index.js';
import { addCheckpoint, addEvent, createRun, EpochTally, finishRun, markRunning, openStore, type Store } from '../store/index.js';
import { RunTelemetry, type RunEnergyTotal } from '../telemetry/recorder.js';
import type { CheckpointRecord, EpochReport, StepReport, TrainingSink } from './sink.js';

export interface StoreRunOptions {
  configPath?: string;
  /** What the engine runs on (recorded with the run). */
  backend: string;
  threads: number;
  warn(line: string): void;
}

/** What a finished run records besides its metrics. */
export interface RunOutcome {
  status: 'COMPLETED' | 'CANCELLED';
  wallTimeS: number;
  modelSizeBytes: number;
  packedSizeBytes: number | null;
  /** Why a cancelled run ended. */
  reason?: string;
}

export class StoreRun implements TrainingSink {
  /** The final and best test accuracy and the throughput over the epochs completed. */
  readonly tally = new EpochTally();
  /** Optimizer steps done. */
  steps = 0;

  private constructor(
    private readonly store: Store,
    readonly runId: string,
    private readonly telemetry: RunTelemetry,
  ) {}

  /** Creates the run's row (RUNNING) and starts its telemetry. */
  static async open(config: RunConfig, o: StoreRunOptions): Promise<StoreRun> {
    const store = openStore(config.store);
    try {
      const run = createRun(store.db, { config, configPath: o.configPath });
      markRunning(store.db, run.id, { backend: o.backend, threads: o.threads });
      const telemetry = await RunTelemetry.start(store.db, run.id, { warn: o.warn });
      return new StoreRun(store, run.id, telemetry);
    } catch (err) {
      store.close();
      throw err;
    }
  }

  step(s: StepReport): void {
    this.steps = s.step;
    this.telemetry.tick();
  }

  async epoch(e: EpochReport): Promise<void> {
    const { test } = e;
    this.tally.record(this.store.db, this.runId, {
      epoch: e.epoch,
      trainLoss: e.trainLoss,
      trainAcc: e.trainAcc,
      testLoss: test?.loss ?? null,
      testAcc: test?.accuracy ?? null,
      lr: e.lr,
      samplesPerS: e.samplesPerS,
      epochTimeS: e.epochTimeS,
    });
    if (e.skippedSteps > 0)
      addEvent(this.store.db, { runId: this.runId, kind: 'skipped', detail: { epoch: e.epoch, steps: e.skippedSteps } });
    await this.telemetry.epochEnd(e.epoch);
  }

  async checkpoint(c: CheckpointRecord): Promise<void> {
    addCheckpoint(this.store.db, { runId: this.runId, epoch: c.epoch, step: c.step, path: c.path, sha256: c.sha256, bytes: c.bytes });
  }

  log(_line: string): void {}

  /** Records the run's end and its energy; closes the store. */
  async finish(o: RunOutcome): Promise<RunEnergyTotal> {
    const energy = await this.telemetry.finish();
    finishRun(this.store.db, this.runId, o.status, {
      finalTestAcc: this.tally.finalTestAcc,
      bestTestAcc: this.tally.bestTestAcc,
      modelSizeBytes: o.modelSizeBytes,
      packedSizeBytes: o.packedSizeBytes,
      wallTimeS: o.wallTimeS,
      samplesPerS: this.tally.samplesPerS,
      error: o.status === 'CANCELLED' ? (o.reason ?? 'cancelled') : null,
    });
    this.store.close();
    return energy;
  }

  /** Records the run as FAILED with the error's message; closes the store. */
  async fail(err: unknown): Promise<void> {
    await this.telemetry.finish();
    finishRun(this.store.db, this.runId, 'FAILED', { error: String((err as Error).message ?? err) });
    this.store.close();
  }
}
