// Shared set-up for the fault tests: a small fashion-mnist run config, the real data set's files
// (whole, or cut down to a few records so a crafted copy is quick to write), a second SQLite
// client that holds the store's write lock, read-only and tiny mounts (root only), and the
// shape every user error must have on the real CLI's stderr.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type BetterSqlite3 from 'better-sqlite3';
import { REPO_ROOT } from '../helpers/cli.js';
import { type TmpDir, tmpDir } from '../helpers/tmp.js';

/** The real data set, as installed on the test machines (IDX, gzipped). */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

const requireFromRepo = createRequire(join(REPO_ROOT, 'package.json'));
const Database = requireFromRepo('better-sqlite3') as typeof BetterSqlite3;

export interface RunConfigOptions {
  /** dataset.dir; the real data set by default. */
  dataDir?: string;
  store: string;
  checkpointDir: string;
  epochs?: number;
  /** dataset.subset: 0.01 of fashion-mnist is 600 training images (10 steps of 64). */
  subset?: number;
}

/** Writes a one-process fashion-mnist config (a 16-unit MLP on a small subset) into `dir`; returns its path. */
export function writeRunConfig(dir: string, o: RunConfigOptions): string {
  const file = join(dir, 'run.yaml');
  writeFileSync(
    file,
    `name: faults
seed: 1
dataset: { name: fashion-mnist, dir: ${JSON.stringify(o.dataDir ?? FASHION_MNIST_DIR)}, subset: ${o.subset ?? 0.01} }
model: { arch: mlp, hidden: [16], precision: fp32, batchNorm: false }
train: { epochs: ${o.epochs ?? 2}, batchSize: 64 }
engine: { backend: cpu, threads: 1 }
store: ${JSON.stringify(o.store)}
checkpointDir: ${JSON.stringify(o.checkpointDir)}
`,
  );
  return file;
}

/** An IDX file's decompressed bytes cut to its first `n` records (header fixed up). */
export function idxHead(bytes: Buffer, n: number): Buffer {
  const rank = bytes[3]!;
  const header = 4 + 4 * rank;
  let record = 1;
  for (let d = 1; d < rank; d++) record *= bytes.readUInt32BE(4 + 4 * d);
  const out = Buffer.from(bytes.subarray(0, header + n * record));
  out.writeUInt32BE(n, 4);
  return out;
}

/** Replaces one file of a data copy: new IDX bytes (gzipped when written), raw bytes, or null to keep it. */
export type DataChange = (file: keyof typeof IDX_FILES, idx: Buffer) => { idx: Buffer } | { raw: Buffer } | null;

/**
 * Writes a small but valid copy of the real data set into `dir` (`trainN` and `testN` records,
 * gzipped like the originals); `change` may replace a file's (decompressed) bytes, or return
 * raw bytes to write as they are. Returns the four paths.
 */
export function writeDataCopy(
  dir: string,
  o: { trainN?: number; testN?: number; change?: DataChange } = {},
): Record<keyof typeof IDX_FILES, string> {
  const paths = {} as Record<keyof typeof IDX_FILES, string>;
  for (const [key, name] of Object.entries(IDX_FILES) as [keyof typeof IDX_FILES, string][]) {
    const n = key.startsWith('train') ? (o.trainN ?? 640) : (o.testN ?? 200);
    const idx = idxHead(gunzipSync(readFileSync(join(FASHION_MNIST_DIR, name))), n);
    const changed = o.change?.(key, idx) ?? { idx };
    paths[key] = join(dir, name);
    writeFileSync(paths[key], 'raw' in changed ? changed.raw : gzipSync(changed.idx));
  }
  return paths;
}

/** The runs in a store file, read by a separate plain SQLite connection; [] when there is no file. */
export function storedRuns(file: string): { id: string; status: string; error: string | null }[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT id, status, error FROM runs ORDER BY created_at').all() as {
      id: string;
      status: string;
      error: string | null;
    }[];
  } finally {
    db.close();
  }
}

/** The epochs with metrics of a run, in order. */
export function storedEpochs(file: string, runId: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT epoch FROM epoch_metrics WHERE run_id = ? ORDER BY epoch').all(runId) as { epoch: number }[]).map(
      (r) => r.epoch,
    );
  } finally {
    db.close();
  }
}

/** How many epoch rows the store holds so far (0 while it has none or is not created yet). */
export function epochRowCount(file: string): number {
  if (!existsSync(file)) return 0;
  const db = new Database(file, { readonly: true, timeout: 1000 });
  try {
    return (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'epoch_metrics'").get() as { n: number }).n === 0
      ? 0
      : (db.prepare('SELECT count(*) AS n FROM epoch_metrics').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Polls `check` every 100 ms until it is true; fails after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface LockHolder {
  child: ChildProcess;
  /** Resolves when the holder has committed and exited. */
  released: Promise<void>;
}

/**
 * A second SQLite client (a child process running better-sqlite3) that takes `BEGIN IMMEDIATE`
 * on `file` (the write lock) and holds it for `holdMs` before committing; resolves once it holds it.
 */
export async function holdWriteLock(file: string, holdMs: number, t: { after(fn: () => void): void }): Promise<LockHolder> {
  const script = `
    const Database = require(${JSON.stringify(requireFromRepo.resolve('better-sqlite3'))});
    const db = new Database(process.argv[1], { timeout: 10000 });
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.argv[2]));
    db.exec('COMMIT');
    db.close();`;
  const child = spawn(process.execPath, ['-e', script, file, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const released = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      if (s.includes('locked')) resolve();
    });
    child.on('close', (code) => reject(new Error(`the lock holder exited (${code}) before it held the lock`)));
  });
  return { child, released };
}

/** Whether this process may mount file systems (root): the read-only and disk-full cases need it. */
export function canMount(): boolean {
  return process.getuid?.() === 0;
}

export interface FaultDir extends TmpDir {
  /** Runs `fn` when the test ends, before the directory is removed (last registered first). */
  undo(fn: () => void): void;
  /** Mounts a tmpfs of `size` (`2m`) on `at` (root only); unmounted when the test ends. */
  mountTmpfs(at: string, size: string): void;
  /** Bind-mounts `from` on `to` read-only (what read-only media look like to SQLite; root only); unmounted when the test ends. */
  mountReadOnly(from: string, to: string): void;
}

/** A temp directory for a fault test: what it mounts or changes inside is undone, then it is removed, when the test ends. */
export async function faultDir(t: { after(fn: () => Promise<void>): void }, prefix: string): Promise<FaultDir> {
  const dir = await tmpDir({ prefix });
  const undos: (() => void)[] = [];
  t.after(async () => {
    for (const fn of undos.reverse()) fn();
    await dir.cleanup();
  });
  const unmount = (at: string) => () => execFileSync('umount', [at]);
  return {
    ...dir,
    undo: (fn) => undos.push(fn),
    mountTmpfs(at, size) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at]);
      undos.push(unmount(at));
    },
    mountReadOnly(from, to) {
      execFileSync('mount', ['--bind', from, to]);
      undos.push(unmount(to));
      execFileSync('mount', ['-o', 'remount,ro,bind', to]);
    },
  };
}

/**
 * The shape of a user error on stderr: `bnn: error: ` lines only, no stack frames and no
 * "internal error"; each of `mentions` appears in it.
 */
export function assertUserError(r: { code: number | null; stderr: string }, mentions: readonly (string | RegExp)[]): void {
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a user error prints no stack:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error/, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('bnn: error: '));
  assert.ok(errors.length > 0, `no "bnn: error:" line:\n${r.stderr}`);
  const message = errors.join('\n');
  for (const m of mentions) {
    if (typeof m === 'string') assert.ok(message.includes(m), `the message should name ${m}:\n${message}`);
    else assert.match(message, m);
  }
}
