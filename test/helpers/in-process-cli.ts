import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/run.js';
import type { CliResult } from './cli.js';

/** Runs `bnn <args>` in this process (src/cli/run.ts), collecting stdout and stderr as text. */
export async function bnn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(c: Buffer | string, _e, cb) {
        append(c.toString());
        cb();
      },
    });
  const code = await runCli(args, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

/** `bnn(...args)` in the shape of a child run (helpers/cli.ts), so in-process and child runs can be checked alike. */
export async function bnnResult(args: readonly string[]): Promise<CliResult> {
  return { ...(await bnn(...args)), signal: null, timedOut: false };
}
