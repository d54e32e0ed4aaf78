// The store's file or its medium at fault, met by the real CLI (child processes) on a real SQLite
// file written by a real `bnn train` on fashion-mnist: read-only media (a read-only bind mount, or
// a directory this non-root user cannot write), a corrupt or foreign file, and a full disk (a
// small tmpfs) while a run writes. Each is a user error naming the file and a fix, and no run is
// left RUNNING.
import assert from 'node:assert/strict';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { spawnCli } from '../helpers/cluster.js';
import { tmpDir } from '../helpers/tmp.js';
import { assertUserError, canMount, epochRowCount, type FaultDir, faultDir, storedRuns, waitUntil, writeRunConfig } from './fixtures.js';

const Database = createRequire(join(REPO_ROOT, 'package.json'))('better-sqlite3') as typeof BetterSqlite3;

/** A store holding one COMPLETED run of `bnn train`, checkpointed into its main file (no -wal, no -shm left). */
async function trainedStore(dir: string): Promise<{ store: string; runId: string }> {
  const store = join(dir, 'bnn.db');
  const config = writeRunConfig(dir, { store, checkpointDir: join(dir, 'ckpt'), epochs: 1 });
  const r = await runCli(['train', config, '--quiet'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const db = new Database(store);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const [run] = storedRuns(store);
  assert.equal(run?.status, 'COMPLETED');
  return { store, runId: run!.id };
}

/**
 * `dir` made read-only media for this process: a read-only bind mount of it (root), or the
 * directory without write permission (non-root). Returns the path to read it at.
 */
function readOnlyMedia(dir: string, faults: FaultDir): string {
  if (canMount()) {
    const at = `${dir}-ro`;
    mkdirSync(at);
    faults.mountReadOnly(dir, at);
    return at;
  }
  chmodSync(dir, 0o555);
  faults.undo(() => chmodSync(dir, 0o755));
  return dir;
}

test('faults store - a WAL store on read-only media: bnn runs and bnn show read it (an immutable snapshot, saying why); bnn train says it cannot write there', async (t) => {
  const dir = await faultDir(t, 'bnn-faults-ro-');
  const { store, runId } = await trainedStore(dir.path);
  const media = dir.join('media');
  mkdirSync(media);
  copyFileSync(store, join(media, 'bnn.db'));
  const file = join(readOnlyMedia(media, dir), 'bnn.db');
  assert.ok(!existsSync(`${file}-wal`) && !existsSync(`${file}-shm`));
  // The failure under test: SQLite itself cannot read a WAL database where it cannot create its -shm file.
  assert.throws(() => {
    const plain = new Database(file, { readonly: true, fileMustExist: true });
    try {
      plain.prepare('SELECT count(*) FROM runs').get();
    } finally {
      plain.close();
    }
  }, /unable to open database file/);

  const runs = await runCli(['runs', '--store', file, '--json'], { cwd: dir.path });
  assert.equal(runs.code, 0, runs.stderr);
  assert.deepEqual(
    (JSON.parse(runs.stdout) as { id: string; status: string }[]).map((x) => [x.id, x.status]),
    [[runId, 'COMPLETED']],
  );
  assert.equal(
    runs.stderr,
    `bnn: note: ${file} is on read-only media (SQLite cannot create its -shm file there): read as an immutable snapshot\n`,
  );
  const show = await runCli(['show', runId, '--store', file, '--json'], { cwd: dir.path });
  assert.equal(show.code, 0, show.stderr);
  assert.equal((JSON.parse(show.stdout) as { epochs: unknown[] }).epochs.length, 1);

  const config = writeRunConfig(dir.path, { store: file, checkpointDir: dir.join('ckpt') });
  const train = await runCli(['train', config, '--quiet'], { cwd: dir.path, timeoutMs: 60_000 });
  assertUserError(train, [
    `bnn: error: ${file}: cannot write: the file, its directory or its file system is read-only`,
    /record runs in a writable store \(--store, or store: in the run config\)/,
  ]);
  assert.deepEqual(
    storedRuns(store).map((x) => x.status),
    ['COMPLETED'],
  );
});

test('faults store - a corrupt store: bnn runs and bnn train exit 1 naming the file, how to salvage it and --store; a foreign file is left as it was', async (t) => {
  const dir = await tmpDir({ t, prefix: 'bnn-faults-corrupt-' });
  const { store } = await trainedStore(dir.path);
  // Damaged pages behind an intact header and schema page.
  const bytes = readFileSync(store);
  for (let i = 4096; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  writeFileSync(store, bytes);
  // And a file that is no SQLite database at all.
  const foreign = dir.join('notes.db');
  writeFileSync(foreign, 'these are my notes, not a database\n'.repeat(200));

  for (const file of [store, foreign]) {
    const runs = await runCli(['runs', '--store', file], { cwd: dir.path });
    const salvage = `if it is your experiment database, restore it from a backup or salvage what is readable with \`sqlite3 ${file} .recover`;
    assertUserError(runs, [
      `bnn: error: ${file}: not an SQLite database, or corrupt`,
      salvage,
      'otherwise pass the right file with --store',
    ]);
    const config = writeRunConfig(dir.path, { store: file, checkpointDir: dir.join('ckpt') });
    const train = await runCli(['train', config, '--quiet'], { cwd: dir.path, timeoutMs: 60_000 });
    assertUserError(train, [`bnn: error: ${file}: not an SQLite database, or corrupt`, salvage]);
  }
  assert.equal(readFileSync(foreign, 'utf8'), 'these are my notes, not a database\n'.repeat(200), 'the foreign file was changed');
});

test('faults store - the disk fills while bnn train writes: exit 1 "disk full" naming the file and a fix; the run FAILED or ABANDONED, never RUNNING', async (t) => {
  if (!canMount()) return t.skip('needs root to mount a small tmpfs');
  const dir = await faultDir(t, 'bnn-faults-full-');
  const disk = dir.join('disk');
  mkdirSync(disk);
  dir.mountTmpfs(disk, '2m');
  const store = join(disk, 'bnn.db');
  const config = writeRunConfig(dir.path, { store, checkpointDir: dir.join('ckpt'), epochs: 40 });
  const train = spawnCli(['train', config], { cwd: dir.path, t });
  await waitUntil("the first epoch's metrics in the store", () => epochRowCount(store) >= 1, 60_000);
  fillUp(join(disk, 'filler'));
  const r = await train.exited;
  assertUserError(r, [
    `bnn: error: ${store}: disk full: SQLite could not write to it (`,
    `on ${disk}); free space there, or record runs in a store on another disk (--store, or store: in the run config)`,
  ]);
  const [run] = storedRuns(store);
  t.diagnostic(
    `stored status ${run!.status}; ${r.stderr
      .split('\n')
      .filter((l) => l.startsWith('bnn: '))
      .join(' | ')}`,
  );
  if (run!.status === 'FAILED') {
    assert.match(run!.error ?? '', /disk full/);
  } else {
    assert.equal(run!.status, 'RUNNING');
    assert.match(
      r.stderr,
      /bnn: warning: run \S+ could not be marked FAILED \(the same failure\); it shows as ABANDONED once this process has exited/,
    );
    const shown = await runCli(['runs', '--store', store, '--json'], { cwd: dir.path });
    assert.equal(shown.code, 0, shown.stderr);
    assert.deepEqual(
      (JSON.parse(shown.stdout) as { status: string }[]).map((x) => x.status),
      ['ABANDONED'],
    );
  }
});

/** Writes `file` until its file system has no space left. */
function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // The last pages: what a 64 KiB write could not take.
  const fd2 = openSync(file, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(512, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd2);
  }
}
