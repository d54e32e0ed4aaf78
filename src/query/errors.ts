import { UserError } from '../util/errors.js';

/**
 * A query flag has a value that is not allowed: names the flag, the value and what is valid.
 * Exit 1, as the issue's acceptance asks for a malformed filter or an unknown metric (the
 * query failed on its input; nothing was read or written). Exit 2 stays for commander's
 * usage errors: an unknown flag, a missing argument or value, `--json` with `--csv`.
 */
export class QueryFlagError extends UserError {
  constructor(
    readonly flag: string,
    readonly value: string,
    /** The valid values, or a description of the valid form. */
    readonly valid: readonly string[] | string,
  ) {
    super(
      `${flag}: '${value}' is not valid; ${typeof valid === 'string' ? `expected ${valid}` : `valid values: ${valid.join(', ')}`}`,
    );
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
