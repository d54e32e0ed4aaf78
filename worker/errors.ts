// Errors of the worker; callers branch with instanceof.
import { TrainingStoppedError } from '../src/train/errors.js';
import { NamedError } from '../src/util/errors.js';

export class WorkerError extends NamedError {}

/** The coordinator told this worker to stop its run (cancelled, or failed on another rank): a stop, not a failure. */
export class RunStoppedError extends TrainingStoppedError {
  constructor(
    readonly runId: string,
    reason: string,
  ) {
    super(reason, `run ${runId} stopped by the coordinator: ${reason}`);
  }
}

/** The coordinator's assignment stream ended while this worker still needed it. */
export class CoordinatorLostError extends WorkerError {}
