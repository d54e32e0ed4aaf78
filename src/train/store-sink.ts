/**
 * The results sink of `bnn train`: the run's row, epoch metrics, checkpoints, hardware and
 * energy go into the experiment database. (A cluster worker reports over RPC instead and the
 * coordinator writes the same rows; this module is never on a worker's import path.)
 *
 * Another process holding the store's lock does not stop training: rows written during the
 * run go through a StoreWriteQueue, kept in memory and retried with backoff while the store is
 * locked, and written before the run's end is recorded (or the run fails saying how long it
 * waited and what was not written).
 */
import { rmSync, statSync } from 'node:fs';
import { isObjectLocation } from '../checkpoint/index.js';
import { DEFAULT_KEEP_CHECKPOINTS, type RunConfig } from '../config/index.js';
import {
  addCheckpoint,
  addEvent,
  checkpointsPastRetention,
  removeCheckpointRows,
  addEpochMetrics,
  createRun,
  EpochTally,
  finishRun,
  markRunning,
  openStore,
  type Store,
  StoreBusyError,
  StoreWriteQueue,
  withStoreErrors,
} from '../store/index.js';
import { RunTelemetry, type RunEnergyTotal } from '../telemetry/recorder.js';
import { currentProcessOwner } from '../util/process-owner.js';
import type { CheckpointRecord, EpochReport, StepReport, TrainingSink } from './sink.js';

export interface StoreRunOptions {
  configPath?: string;
  /** What the engine runs on (recorded with the run). */
  backend: string;
  threads: number;
  /** How long to wait for another process's lock on the store (DEFAULT_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
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
    private readonly writes: StoreWriteQueue,
    private readonly telemetry: RunTelemetry,
    private readonly warn: (line: string) => void,
    /** `train.keepCheckpoints`: newest checkpoints kept (plus the best epoch's). */
    private readonly keep: number,
  ) {}

  /**
   * Creates the run's row (RUNNING, owned by this process: once it is gone, a run left RUNNING
   * shows as ABANDONED) and starts its telemetry. A failure after the row exists ends it FAILED.
   */
  static async open(config: RunConfig, o: StoreRunOptions): Promise<StoreRun> {
    const store = openStore(config.store, {
      ...(o.lockTimeoutMs === undefined ? {} : { busyTimeoutMs: o.lockTimeoutMs }),
      busyHint: 'try again when it has finished, or give bnn train a longer --lock-timeout-ms',
    });
    let runId: string | null = null;
    try {
      const owner = currentProcessOwner();
      const id = withStoreErrors(store, () => createRun(store.db, { config, configPath: o.configPath, owner }).id);
      runId = id;
      withStoreErrors(store, () => markRunning(store.db, id, { backend: o.backend, threads: o.threads, owner }));
      const writes = new StoreWriteQueue(store, { what: `epoch metrics, checkpoints and energy samples of run ${id}`, notice: o.warn });
      const telemetry = await RunTelemetry.start(store.db, id, { warn: o.warn, write: (w) => writes.push(w) });
      return new StoreRun(store, id, writes, telemetry, o.warn, config.train.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS);
    } catch (err) {
      if (runId !== null) recordFailure(store, runId, err, o.warn);
      store.close();
      throw err;
    }
  }

  step(s: StepReport): void {
    this.steps = s.step;
    this.telemetry.tick();
    this.writes.poll();
  }

  async epoch(e: EpochReport): Promise<void> {
    const { test } = e;
    const metrics = {
      epoch: e.epoch,
      trainLoss: e.trainLoss,
      trainAcc: e.trainAcc,
      testLoss: test?.loss ?? null,
      testAcc: test?.accuracy ?? null,
      lr: e.lr,
      samplesPerS: e.samplesPerS,
      epochTimeS: e.epochTimeS,
    };
    this.tally.count(metrics);
    this.writes.push((db) => addEpochMetrics(db, this.runId, metrics));
    if (e.skippedSteps > 0) {
      const detail = { epoch: e.epoch, steps: e.skippedSteps };
      this.writes.push((db) => addEvent(db, { runId: this.runId, kind: 'skipped', detail }));
    }
    await this.telemetry.epochEnd(e.epoch);
  }

  async checkpoint(c: CheckpointRecord): Promise<void> {
    const row = { runId: this.runId, epoch: c.epoch, step: c.step, path: c.path, sha256: c.sha256, bytes: c.bytes };
    this.writes.push((db) => {
      addCheckpoint(db, row);
      this.retain(db);
    });
  }

  /** Retention: rows past `keep` (and not the best epoch's) removed, then their files. */
  private retain(db: Store['db']): void {
    const files = removeCheckpointRows(db, checkpointsPastRetention(db, this.runId, this.keep));
    let freed = 0;
    for (const f of files) {
      if (isObjectLocation(f)) continue; // bnn train writes local files only
      try {
        freed += statSync(f).size;
        rmSync(f, { force: true });
      } catch {
        /* already gone */
      }
    }
    if (files.length > 0)
      addEvent(db, { runId: this.runId, kind: 'checkpoints-deleted', detail: { paths: files, bytesFreed: freed, keep: this.keep } });
  }

  log(_line: string): void {}

  /**
   * Writes what is queued, records the run's end and its energy; closes the store. Where a
   * write fails (the lock outlasts --lock-timeout-ms, a full disk), the store stays open and
   * `fail` may still record FAILED.
   */
  async finish(o: RunOutcome): Promise<RunEnergyTotal> {
    const energy = await this.telemetry.finish();
    // the last epoch's accuracy is in: the best checkpoint may have changed
    this.writes.push((db) => this.retain(db));
    this.writes.drain(this.lostHint());
    withStoreErrors(this.store, () =>
      finishRun(this.store.db, this.runId, o.status, {
        finalTestAcc: this.tally.finalTestAcc,
        bestTestAcc: this.tally.bestTestAcc,
        modelSizeBytes: o.modelSizeBytes,
        packedSizeBytes: o.packedSizeBytes,
        wallTimeS: o.wallTimeS,
        samplesPerS: this.tally.samplesPerS,
        error: o.status === 'CANCELLED' ? (o.reason ?? 'cancelled') : null,
      }),
    );
    this.ended = true;
    this.store.close();
    return energy;
  }

  /**
   * Writes what is queued and records the run as FAILED with the error's message; closes the
   * store; nothing once the run has ended. Never throws: a store that cannot take them (still
   * locked, full) is warned about, and the caller reports the run's own error.
   */
  async fail(err: unknown): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.telemetry.finish();
    } finally {
      this.endFailed(err);
      this.store.close();
    }
  }

  /**
   * Records the run CANCELLED with `reason` at once, synchronously (for a process about to exit
   * on a second stop signal: no energy total, and rows still queued are written only if the
   * store takes them now); closes the store; nothing once the run has ended. Never throws.
   */
  cancelNow(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    try {
      const queued = attempt(() => this.writes.drain(this.lostHint()));
      if (queued !== null) this.warn(`bnn: warning: ${(queued as Error).message}`);
      if (queued instanceof StoreBusyError) return;
      withStoreErrors(this.store, () =>
        finishRun(this.store.db, this.runId, 'CANCELLED', {
          finalTestAcc: this.tally.finalTestAcc,
          bestTestAcc: this.tally.bestTestAcc,
          samplesPerS: this.tally.samplesPerS,
          error: reason,
        }),
      );
    } catch (err) {
      this.warn(`bnn: warning: run ${this.runId} could not be marked CANCELLED (${(err as Error).message}); it shows as ABANDONED`);
    } finally {
      this.store.close();
    }
  }

  private endFailed(err: unknown): void {
    // A lock that already outlasted the timeout would only be waited for again.
    const queued = err instanceof StoreBusyError ? err : attempt(() => this.writes.drain(this.lostHint()));
    // The run's own error may be the queue's (a full disk, the lock): said once, by the caller.
    if (queued !== null && queued !== err) this.warn(`bnn: warning: ${(queued as Error).message}`);
    if (queued instanceof StoreBusyError) return; // still locked: the FAILED row cannot go in either
    recordFailure(this.store, this.runId, err, this.warn);
  }

  private lostHint(): string {
    return (
      `run ${this.runId} is not recorded as ended (it shows as ABANDONED once this process has exited); ` +
      'stop the process holding the lock, or give bnn train a longer --lock-timeout-ms'
    );
  }
}

/** What `fn` threw; null when it returned. */
function attempt(fn: () => void): unknown {
  try {
    fn();
    return null;
  } catch (err) {
    return err;
  }
}

/**
 * Ends a run FAILED with the error's message. Where even that write fails (the store is what
 * broke), says so: the run stays RUNNING in the store and shows as ABANDONED once this process
 * has exited.
 */
function recordFailure(store: Store, runId: string, err: unknown, warn: (line: string) => void): void {
  try {
    withStoreErrors(store, () => finishRun(store.db, runId, 'FAILED', { error: String((err as Error | null)?.message ?? err) }));
  } catch (writeErr) {
    // The store's own failure (a full disk) is reported as the run's error: not repeated here.
    const why = (writeErr as Error).message === (err as Error | null)?.message ? 'the same failure' : (writeErr as Error).message;
    warn(
      `bnn: warning: run ${runId} could not be marked FAILED (${why}); ` +
        'it shows as ABANDONED once this process has exited, and bnn resume can continue it',
    );
  }
}
