import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError } from './errors.js';

const WHY: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a file is in the way of the path',
  EEXIST: 'a file is in the way of the path',
};

/**
 * Checks, before a run is recorded, that checkpoints can be written under `dir`: creates it
 * (and its parents), writes a probe file and removes it. Returns the absolute path.
 * CheckpointError naming the directory, the reason and the flag that sets it otherwise.
 */
export function checkCheckpointDir(dir: string, flag = '--checkpoint-dir'): string {
  const abs = resolve(dir);
  const probe = join(abs, `.bnn-write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(abs, { recursive: true });
    writeFileSync(probe, 'probe\n', { flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = WHY[code] ?? (err as Error).message;
    throw new CheckpointError(
      `checkpoint directory ${abs}: cannot write there (${why}${code && WHY[code] ? `, ${code}` : ''}); ` +
        `pass a writable directory with ${flag} <dir> (or set checkpointDir in the config)`,
      { cause: err },
    );
  } finally {
    rmSync(probe, { force: true });
  }
  return abs;
}
