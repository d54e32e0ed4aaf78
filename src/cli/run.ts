import { defaultCliIO, type CliIO, type CommandContext } from './command.js';
import { handleError, wantsJson } from './handle-error.js';
import { buildProgram } from './index.js';

/**
 * Runs `bnn` with the given arguments (without node and script) and returns the exit
 * code; never exits the process, so tests can call it in-process.
 */
export async function runCli(args: readonly string[], io: CliIO = defaultCliIO()): Promise<number> {
  const ctx: CommandContext = { io, exitCode: 0 };
  try {
    await buildProgram(ctx).parseAsync([...args], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    return handleError(err, { json: wantsJson(args), io });
  }
}
