/**
 * Errors raised by the data package. Callers branch with `instanceof`; the message
 * is for people and names the file or option and what would be valid.
 *
 * - `DataFormatError`: a file exists but its contents are not what the format requires.
 * - `DatasetNotFoundError`: a data set or one of its files is not where it was looked for.
 * - `DataOptionError`: an option or argument (data set name, fraction, batch size …) is invalid.
 */

export class DataError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
  }
}

export class DataFormatError extends DataError {
  /** The offending file. */
  readonly path: string;

  constructor(path: string, problem: string, options?: { cause?: unknown }) {
    super(`${path}: ${problem}`, options);
    this.name = 'DataFormatError';
    this.path = path;
  }
}

export class DatasetNotFoundError extends DataError {
  /** The data set that was asked for. */
  readonly dataset: string;
  /** Every location that was looked in, in order. */
  readonly searched: readonly string[];

  constructor(dataset: string, searched: readonly string[], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatasetNotFoundError';
    this.dataset = dataset;
    this.searched = searched;
  }
}

export class DataOptionError extends DataError {
  /** The option or argument that was rejected, e.g. `fraction` or `dataset.name`. */
  readonly option: string;

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataOptionError';
    this.option = option;
  }
}
