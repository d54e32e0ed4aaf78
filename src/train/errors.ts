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

/**
 * The run diverged: its loss, a gradient, a parameter or an optimizer moment became NaN or
 * ±Inf (`diverged: loss is NaN at epoch 2 step 31`). A failure of the run, not a bug: the CLI
 * prints the message and exits 1, a worker reports it as the run's error. Nothing non-finite
 * was recorded: the last checkpoint written is a usable one.
 */
export class DivergedError extends TrainingError {
  readonly userFacing = true as const;
  readonly exitCode = 1 as const;
}

/** A checkpoint was not written because a tensor of it holds NaN or ±Inf (see `saveCheckpoint`). */
export class NonFiniteStateError extends TrainingError {
  constructor(
    /** Which tensor and where: `param/dense_1/kernel is NaN (element 17)`. */
    readonly what: string,
    readonly path: string,
  ) {
    super(`${path}: not written: ${what}`);
  }
}
