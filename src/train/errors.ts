// Errors of the training loop; callers branch with instanceof.
import { NamedError } from '../util/errors.js';

export class TrainingError extends NamedError {}

/**
 * The run must end at this step boundary (Ctrl-C, the coordinator's STOP): not a failure.
 * The loop checkpoints the boundary on rank 0 on the way out, so the run can be resumed.
 */
export class TrainingStoppedError extends TrainingError {
  constructor(
    readonly reason: string,
    message = `stopped: ${reason}`,
  ) {
    super(message);
  }
}
