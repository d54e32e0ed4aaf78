import { CommanderError } from 'commander';
import { ENV } from '../config/environment.js';
import { isUserFacing } from '../util/errors.js';
import { createLogger, type LogFormat } from '../util/log.js';
import type { CliIO } from './command.js';

export interface HandleErrorOptions {
  /** Print `{"error": {...}}` on stdout instead of text on stderr. */
  json: boolean;
  io: CliIO;
  /** `json`: the error on stderr as one log record (level error) instead of `bnn: error:` lines. */
  logFormat?: LogFormat;
}

/**
 * The one place errors become output and exit codes.
 * - commander usage errors (unknown command or option, missing argument): exit 2;
 *   help and version requests: exit 0.
 * - user errors (UserError and its subclasses FlagError, ConfigError, StoreError, RunNotFoundError,
 *   CheckpointError, ..., or any error with `userFacing = true`): `bnn: error: <message>`,
 *   exit with the error's exitCode (1, or 2 for bad usage such as invalid flag values).
 * - anything else is our bug: message and stack, exit 1.
 * With `logFormat: json` (and no `json`) the error is one log record on stderr instead.
 */
export function handleError(err: unknown, { json, io, logFormat = 'text' }: HandleErrorOptions): number {
  const e = classify(err);
  if (typeof e === 'number') return e;
  const { stack, ...reported } = e;
  const { message, ...fields } = reported;
  if (json) {
    writeJson(io, reported);
    if (stack !== undefined) io.stderr.write(`${stack}\n`);
  } else if (logFormat === 'json') {
    createLogger({ format: 'json', write: (s) => io.stderr.write(s) }).error(message, {
      ...fields,
      ...(stack === undefined ? {} : { stack }),
    });
  } else if (stack !== undefined) {
    io.stderr.write(`bnn: internal error (this is a bug, please report it): ${message}\n${stack}\n`);
  } else {
    for (const line of message.split('\n')) io.stderr.write(`bnn: error: ${line}\n`);
  }
  return e.exitCode;
}

interface Reported extends Record<string, unknown> {
  type: string;
  message: string;
  exitCode: number;
  /** Our bug's stack (internal errors only). */
  stack?: string;
}

/** What to report of `err`, or the exit code alone when there is nothing to report (help, version). */
function classify(err: unknown): Reported | number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    // `bnn` alone prints help to stderr: a usage error, already explained.
    if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
    const message = `${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see bnn --help)`;
    return { type: 'UsageError', message, exitCode: 2 };
  }
  if (isUserFacing(err)) {
    const exitCode = err.exitCode === 2 ? 2 : 1;
    const details =
      typeof (err as { details?: unknown }).details === 'function'
        ? (err as unknown as { details(): Record<string, unknown> }).details()
        : {};
    return { type: err.name, message: err.message, exitCode, ...details };
  }
  const error = err instanceof Error ? err : new Error(String(err));
  return { type: 'InternalError', message: error.message, exitCode: 1, stack: error.stack ?? String(error) };
}

function writeJson(io: CliIO, error: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify({ error })}\n`);
}

/** The `--log-format` of the command line, else of BNN_LOG_FORMAT, for reporting an error: json, or text for anything else. */
export function logFormatOf(args: readonly string[], env: NodeJS.ProcessEnv = process.env): LogFormat {
  const end = args.indexOf('--');
  const given = end === -1 ? args : args.slice(0, end);
  let value = env[ENV.logFormat];
  given.forEach((a, i) => {
    if (a === '--log-format') value = given[i + 1];
    else if (a.startsWith('--log-format=')) value = a.slice('--log-format='.length);
  });
  return value?.trim().toLowerCase() === 'json' ? 'json' : 'text';
}

/** Whether the command line asks for JSON output (known before commander has parsed it). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}
