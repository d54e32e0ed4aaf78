/**
 * The results sink of `bnn train`: the run's row, epoch metrics, checkpoints, hardware and
 * energy go straight into the experiment database. (A cluster worker reports over RPC instead
 * and the coordinator writes the same rows; this module is never on a worker's import path.)
 */
import type { RunConfig } from '../config/index.js';
import { addCheckpoint, createRun, EpochTally, finishRun, markRunning, openStore, type Store } from '../store/index.js';
import { RunTelemetry, type RunEnergyTotal } from '../telemetry/recorder.js';
import { currentProcessOwner } from '../util/process-owner.js';
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
  /** Set once the run's end is recorded (or failing to record it was reported): `fail` then does nothing. */
  private ended = false;

  private constructor(
    private readonly store: Store,
    readonly runId: string,
    private readonly telemetry: RunTelemetry,
    private readonly warn: (line: string) => void,
  ) {}

  /**
   * Creates the run's row (RUNNING, owned by this process: once it is gone, a run left RUNNING
   * shows as ABANDONED) and starts its telemetry. A failure after the row exists ends it FAILED.
   */
  static async open(config: RunConfig, o: StoreRunOptions): Promise<StoreRun> {
    const store = openStore(config.store);
    let runId: string | null = null;
    try {
      const owner = currentProcessOwner();
      runId = createRun(store.db, { config, configPath: o.configPath, owner }).id;
      markRunning(store.db, runId, { backend: o.backend, threads: o.threads, owner });
      const telemetry = await RunTelemetry.start(store.db, runId, { warn: o.warn });
      return new StoreRun(store, runId, telemetry, o.warn);
    } catch (err) {
      if (runId !== null) recordFailure(store, runId, err, o.warn);
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
    await this.telemetry.epochEnd(e.epoch);
  }

  async checkpoint(c: CheckpointRecord): Promise<void> {
    addCheckpoint(this.store.db, { runId: this.runId, epoch: c.epoch, step: c.step, path: c.path, sha256: c.sha256, bytes: c.bytes });
  }

  log(_line: string): void {}

  /** Records the run's end and its energy; closes the store. Where the write fails, `fail` may still record FAILED. */
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
    this.ended = true;
    this.store.close();
    return energy;
  }

  /** Records the run as FAILED with the error's message and closes the store; nothing once the run has ended. */
  async fail(err: unknown): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.telemetry.finish();
    } finally {
      recordFailure(this.store, this.runId, err, this.warn);
      this.store.close();
    }
  }
}

/**
 * Ends a run FAILED with the error's message. Where even that write fails (the store is what
 * broke), says so: the run stays RUNNING in the store and shows as ABANDONED once this process
 * has exited.
 */
function recordFailure(store: Store, runId: string, err: unknown, warn: (line: string) => void): void {
  try {
    finishRun(store.db, runId, 'FAILED', { error: String((err as Error | null)?.message ?? err) });
  } catch (writeErr) {
    warn(
      `bnn: warning: run ${runId} could not be marked FAILED (${(writeErr as Error).message}); ` +
        'it shows as ABANDONED once this process has exited, and bnn resume can continue it',
    );
  }
}
