import { commandContext, defaultCliIO, type CliIO } from './command.js';
import { handleError, logFormatOf, wantsJson } from './handle-error.js';
import { buildProgram } from './index.js';

/**
 * Runs `bnn` with the given arguments (without node and script) and returns the exit
 * code; never exits the process, so tests can call it in-process.
 */
export async function runCli(args: readonly string[], io: CliIO = defaultCliIO()): Promise<number> {
  const ctx = commandContext(io);
  try {
    await buildProgram(ctx).parseAsync([...args], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    return handleError(err, { json: wantsJson(args), io, logFormat: logFormatOf(args) });
  }
}
