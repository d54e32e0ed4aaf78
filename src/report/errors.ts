import { UserError } from '../util/errors.js';

/** A report cannot be made from what was asked (no runs match) or cannot be written (exit 1). */
export class ReportError extends UserError {
  constructor(message: string, options: { cause?: unknown; exitCode?: 1 | 2; file?: string } = {}) {
    super(message, options);
    this.name = 'ReportError';
    this.file = options.file;
  }

  /** The output file concerned, where the error is about writing it. */
  readonly file: string | undefined;

  override details(): Record<string, unknown> {
    return this.file === undefined ? {} : { file: this.file };
  }
}
