// Errors of the worker; callers branch with instanceof.
import { TrainingStoppedError } from '../src/train/errors.js';
import { UserError } from '../src/util/errors.js';

/** The worker cannot go on for a reason outside it (its coordinator went away): a user error. */
export class WorkerError extends UserError {}

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

/** The worker was told to stop (SIGTERM, SIGINT): it leaves its run at the next step boundary and exits 0. */
export class WorkerShutdownError extends TrainingStoppedError {
  constructor(readonly signal: string) {
    super(`worker shutting down (${signal})`, `worker shutting down (${signal}): leaving at the next step boundary`);
  }
}
