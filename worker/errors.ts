// Errors of the worker; callers branch with instanceof.
import { TrainingStoppedError } from '../src/train/errors.js';

export class WorkerError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'WorkerError';
  }
}

/** The coordinator told this worker to stop its run (cancelled, or failed on another rank): a stop, not a failure. */
export class RunStoppedError extends TrainingStoppedError {
  constructor(
    readonly runId: string,
    reason: string,
  ) {
    super(reason, `run ${runId} stopped by the coordinator: ${reason}`);
    this.name = 'RunStoppedError';
  }
}

/** The coordinator's assignment stream ended while this worker still needed it. */
export class CoordinatorLostError extends WorkerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'CoordinatorLostError';
  }
}
