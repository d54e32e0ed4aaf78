import type { Command } from 'commander';

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
}

/**
 * Adds one subcommand to the program. Each file in commands/ exports one of these and
 * index.ts lists it in COMMANDS.
 */
export type CommandRegistration = (program: Command, ctx: CommandContext) => void;

/**
 * Adapts a handler that returns an exit code to a commander action. Handlers throw
 * for failures (handleError maps them) and never call process.exit.
 */
export function action<A extends unknown[]>(ctx: CommandContext, handler: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    ctx.exitCode = await handler(...args);
  };
}
