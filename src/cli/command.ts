import type { Command } from 'commander';
import { envSourceOf } from '../config/environment.js';
import { FlagError, namingEnvSources } from '../config/flags.js';
import { createLogger, type Logger } from '../util/log.js';

/** Where a command writes: stdout for results and JSON, stderr for people (progress, errors). */
export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function defaultCliIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr };
}

export interface CommandContext {
  io: CliIO;
  /** The exit code the running command returned; set by `action`. */
  exitCode: number;
  /** Log lines of the command (stderr), in the `--log-format` given; set before the action runs. */
  log: Logger;
}

/** A context for one command line: text log lines until `--log-format` says otherwise. */
export function commandContext(io: CliIO = defaultCliIO()): CommandContext {
  return { io, exitCode: 0, log: createLogger({ format: 'text', write: (s) => io.stderr.write(s) }) };
}

/**
 * Adds one subcommand to the program. Each file in commands/ exports one of these and
 * index.ts lists it in COMMANDS.
 */
export type CommandRegistration = (program: Command, ctx: CommandContext) => void;

/**
 * Adapts a handler that returns an exit code to a commander action. Handlers throw
 * for failures (handleError maps them) and never call process.exit. A bad flag value that
 * came from an environment variable is reported as that variable.
 */
export function action<A extends unknown[]>(ctx: CommandContext, handler: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      ctx.exitCode = await handler(...args);
    } catch (err) {
      throw err instanceof FlagError ? namingEnvSources(err, envOfFlag(args.at(-1) as Command)) : err;
    }
  };
}

/** The environment variable a flag of `command` took its value from, if it did. */
export function envOfFlag(command: Command): (flag: string) => string | undefined {
  return (flag) => {
    const option = command.options.find((o) => o.long === flag);
    return option ? envSourceOf(command, option.attributeName()) : undefined;
  };
}
