import { badFlagValue, UserError } from '../util/errors.js';

/**
 * A well-formed flag value that names nothing in the store (a `--baseline` group no matching
 * run is in): exit 1, the query ran and found nothing to match. A malformed flag value is a
 * FlagError (src/config/flags.ts) instead: bad usage, exit 2, before any I/O.
 */
export class QueryFlagError extends UserError {
  constructor(
    readonly flag: string,
    readonly value: string,
    /** The valid values, or a description of the valid form. */
    readonly valid: readonly string[] | string,
  ) {
    super(badFlagValue(flag, value, `expected ${typeof valid === 'string' ? valid : `one of ${valid.join(', ')}`}`));
    this.name = 'QueryFlagError';
  }

  override details(): Record<string, unknown> {
    return { flag: this.flag, value: this.value, valid: this.valid };
  }
}

/** `bnn sql` was given something other than one read-only statement that returns rows. */
export class SqlRefusedError extends UserError {
  constructor(
    message: string,
    /** The statement's leading keyword (`INSERT`, `PRAGMA`, ...), upper-cased; empty when there is none. */
    readonly keyword: string,
  ) {
    super(message);
    this.name = 'SqlRefusedError';
  }

  override details(): Record<string, unknown> {
    return { keyword: this.keyword };
  }
}

/** A read-only statement failed in SQLite (a syntax error, an unknown table or column). */
export class SqlError extends UserError {
  constructor(
    message: string,
    readonly code: string | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'SqlError';
  }

  override details(): Record<string, unknown> {
    return { code: this.code };
  }
}
