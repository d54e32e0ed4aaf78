/**
 * Base class for errors caused by the user's input (a bad file, flag, id or value) rather
 * than by a bug. The CLI prints `message` as-is, without a stack, and exits with
 * `exitCode`: 1 for a failed operation, 2 for bad usage (invalid flags or flag values).
 * Packages extend it with their own small classes; callers branch with `instanceof`.
 */
export class UserError extends Error {
  /** Marks the error as fit to show to a user without a stack (checked by duck typing too). */
  readonly userFacing = true as const;
  readonly exitCode: 1 | 2;

  constructor(message: string, options: { cause?: unknown; exitCode?: 1 | 2 } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // Named after the class: a subclass needs no name of its own (setting one is harmless).
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }

  /** Extra machine-readable fields for `--json` error output; subclasses add theirs. */
  details(): Record<string, unknown> {
    return {};
  }
}

/** True for UserError and for foreign errors that opt in with `userFacing = true`. */
export function isUserFacing(err: unknown): err is Error & { userFacing: true; exitCode?: number } {
  return err instanceof Error && (err as { userFacing?: unknown }).userFacing === true;
}

/**
 * The one wording of a bad flag value, shared by FlagError (src/config/flags.ts) and config
 * overrides: `--limit: 'abc' is not valid; expected an integer >= 1`.
 */
export function badFlagValue(flag: string, value: string, why: string): string {
  return `${flag}: '${value}' is not valid; ${why}`;
}

/** An Error named after its class: a small error class needs no constructor of its own. */
export class NamedError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}
