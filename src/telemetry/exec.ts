import { execFile } from 'node:child_process';

/** Runs a command and resolves with its stdout; rejects on a missing binary, non-zero exit or timeout. */
export type CommandRunner = (command: string, args: readonly string[], timeoutMs: number) => Promise<string>;

export const runCommand: CommandRunner = (command, args, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile(command, [...args], { timeout: timeoutMs, encoding: 'utf8', windowsHide: true }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });

/** A short reason for a failed command, for "unavailable because ..." messages. */
export function commandFailure(command: string, err: unknown): string {
  const e = err as { code?: unknown; killed?: boolean; message?: string };
  if (e.code === 'ENOENT') return `${command} not found`;
  if (e.killed) return `${command} timed out`;
  return `${command} failed: ${(e.message ?? String(err)).split('\n')[0]}`;
}
