import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TmpDir {
  /** Absolute path of a fresh, empty directory. */
  path: string;
  /** Joins segments onto the directory. */
  join(...segments: string[]): string;
  /** Removes the directory and everything in it; idempotent. */
  cleanup(): Promise<void>;
}

/** Something with node:test's `after` hook (a TestContext or the `test.after` function's owner). */
interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/**
 * A fresh temp directory under the OS temp dir. Pass a node:test context (`t`) to have
 * it removed when that test ends; otherwise call `cleanup()` yourself.
 */
export async function tmpDir(options: { prefix?: string; t?: AfterHook } = {}): Promise<TmpDir> {
  const path = await mkdtemp(join(tmpdir(), options.prefix ?? 'bnn-test-'));
  let removed = false;
  const dir: TmpDir = {
    path,
    join: (...segments) => join(path, ...segments),
    async cleanup() {
      if (removed) return;
      removed = true;
      await rm(path, { recursive: true, force: true });
    },
  };
  options.t?.after(() => dir.cleanup());
  return dir;
}
