import { CommanderError } from 'commander';
import { isUserFacing } from '../util/errors.js';
import type { CliIO } from './command.js';

export interface HandleErrorOptions {
  /** Print `{"error": {...}}` on stdout instead of text on stderr. */
  json: boolean;
  io: CliIO;
}

/**
 * The one place errors become output and exit codes.
 * - commander usage errors (unknown command or option, missing argument): exit 2;
 *   help and version requests: exit 0.
 * - user errors (UserError and its subclasses FlagError, ConfigError, StoreError, RunNotFoundError,
 *   CheckpointError, ..., or any error with `userFacing = true`): `bnn: error: <message>`,
 *   exit with the error's exitCode (1, or 2 for bad usage such as invalid flag values).
 * - anything else is our bug: message and stack, exit 1.
 */
export function handleError(err: unknown, { json, io }: HandleErrorOptions): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    // `bnn` alone prints help to stderr: a usage error, already explained.
    if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
    const message = `${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see bnn --help)`;
    return report(io, json, { type: 'UsageError', message, exitCode: 2 });
  }
  if (isUserFacing(err)) {
    const exitCode = err.exitCode === 2 ? 2 : 1;
    const details =
      typeof (err as { details?: unknown }).details === 'function'
        ? (err as unknown as { details(): Record<string, unknown> }).details()
        : {};
    return report(io, json, { type: err.name, message: err.message, exitCode, ...details });
  }
  const error = err instanceof Error ? err : new Error(String(err));
  if (json) {
    writeJson(io, { type: 'InternalError', message: error.message, exitCode: 1 });
  } else {
    io.stderr.write(`bnn: internal error (this is a bug, please report it): ${error.message}\n`);
  }
  io.stderr.write(`${error.stack ?? String(error)}\n`);
  return 1;
}

function report(io: CliIO, json: boolean, error: { type: string; message: string; exitCode: number } & Record<string, unknown>): number {
  if (json) writeJson(io, error);
  else for (const line of error.message.split('\n')) io.stderr.write(`bnn: error: ${line}\n`);
  return error.exitCode;
}

function writeJson(io: CliIO, error: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify({ error })}\n`);
}

/** Whether the command line asks for JSON output (known before commander has parsed it). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}
