import { UserError } from '../util/errors.js';

/**
 * A checkpoint file that cannot be written, read, or trusted (bad layout, wrong model,
 * hash mismatch). The message names the file and the problem.
 */
export class CheckpointError extends UserError {
  /** The checkpoint file concerned, when known. */
  readonly file: string | undefined;

  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'CheckpointError';
    this.file = options.file;
  }

  /** `checkpoint <file>: <problem>`, with `file` recorded. */
  static at(file: string, problem: string, options: { cause?: unknown } = {}): CheckpointError {
    return new CheckpointError(`checkpoint ${file}: ${problem}`, { ...options, file });
  }

  override details(): Record<string, unknown> {
    return this.file === undefined ? {} : { file: this.file };
  }
}

/**
 * The store holding a checkpoint cannot be reached (the NATS server is down, the connection
 * broke mid-read): not a verdict on the checkpoint, so a resume fails instead of refusing it
 * and falling back to an older one.
 */
export class CheckpointStoreUnavailableError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'CheckpointStoreUnavailableError';
  }
}
