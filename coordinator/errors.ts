// Domain errors of the coordinator; server.ts maps each to a gRPC status in one place.
import { UserError } from '../src/util/errors.js';

/** A request the coordinator refuses (the caller's mistake, never the coordinator's bug): a user error. */
export class CoordinatorError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'CoordinatorError';
  }
}

/** A call named a worker id the coordinator does not know (never registered, or declared dead). */
export class UnknownWorkerError extends CoordinatorError {
  constructor(readonly workerId: string) {
    super(`unknown worker '${workerId}' (register first)`);
    this.name = 'UnknownWorkerError';
  }
}

/** A request is malformed (bad config JSON, worker count, ...). */
export class InvalidRequestError extends CoordinatorError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'InvalidRequestError';
  }
}

/** A report names a run, generation or rank the worker is not a member of. */
export class NotAMemberError extends CoordinatorError {
  constructor(workerId: string, runId: string, generation: number, rank: number) {
    super(`worker '${workerId}' is not rank ${rank} of run ${runId} generation ${generation}`);
    this.name = 'NotAMemberError';
  }
}

/** ResumeRun named a run that cannot be resumed (completed, or active). */
export class NotResumableError extends CoordinatorError {
  constructor(
    readonly runId: string,
    why: string,
  ) {
    super(`run ${runId} cannot be resumed: ${why}`);
    this.name = 'NotResumableError';
  }
}
