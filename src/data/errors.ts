/**
 * Errors raised by the data package. Callers branch with `instanceof`; the message
 * is for people and names the file or option and what would be valid. Every one is a
 * user error (the files or options given, never our bug): the CLI prints it without a stack.
 *
 * - `DataFormatError`: a file exists but its contents are not what the format requires.
 * - `DatasetNotFoundError`: a data set or one of its files is not where it was looked for.
 * - `DataOptionError`: an option or argument (data set name, fraction, batch size …) is invalid.
 */
import { UserError } from '../util/errors.js';

/** What fixes a file whose contents are wrong, unless the problem says so itself. */
export const DATA_FILE_FIX = 're-download or reinstall the data set, or point dataset.dir (or $BNN_DATA_DIR) at a good copy';

export class DataError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DataError';
  }
}

export class DataFormatError extends DataError {
  /** The offending file. */
  readonly path: string;

  /** `<path>: <problem>; <fix>` (the fix defaults to DATA_FILE_FIX; pass '' when `problem` already says it). */
  constructor(path: string, problem: string, options: { cause?: unknown; fix?: string } = {}) {
    const fix = options.fix ?? DATA_FILE_FIX;
    super(`${path}: ${problem}${fix ? `; ${fix}` : ''}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'DataFormatError';
    this.path = path;
  }
}

export class DatasetNotFoundError extends DataError {
  /** The data set that was asked for. */
  readonly dataset: string;
  /** Every location that was looked in, in order. */
  readonly searched: readonly string[];

  constructor(dataset: string, searched: readonly string[], message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DatasetNotFoundError';
    this.dataset = dataset;
    this.searched = searched;
  }
}

export class DataOptionError extends DataError {
  /** The option or argument that was rejected, e.g. `fraction` or `dataset.name`. */
  readonly option: string;

  constructor(option: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DataOptionError';
    this.option = option;
  }
}
