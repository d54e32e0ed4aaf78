import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/run.js';

/** Runs `bnn <args>` in this process (src/cli/run.ts), collecting stdout and stderr as text. */
export async function bnn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write(c: Buffer | string, _e, cb) { append(c.toString()); cb(); } });
  const code = await runCli(args, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}
