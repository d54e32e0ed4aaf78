// The store under contention, met by the real `bnn train` (a child process) on the real data set:
// a second SQLite client (another child, plain better-sqlite3) holds the write lock with
// BEGIN IMMEDIATE. Training goes on meanwhile, its epoch metrics kept and written once the lock
// is free; a lock that outlasts --lock-timeout-ms is a user error naming the lock and the flag.
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../helpers/cli.js';
import { spawnCli } from '../helpers/cluster.js';
import { tmpDir } from '../helpers/tmp.js';
import { assertUserError, epochRowCount, holdWriteLock, storedEpochs, storedRuns, waitUntil, writeRunConfig } from './fixtures.js';

/** An epoch line (after its timestamp and level). */
const EPOCH_DONE = /^(?:\S+Z \w+ +)?epoch \d+\/\d+ {2}train loss/;

test('faults store - another client holds BEGIN IMMEDIATE for 20 s mid-run: training goes on, the run COMPLETES with every epoch', async (t) => {
  const dir = await tmpDir({ t, prefix: 'bnn-faults-lock-' });
  const store = dir.join('bnn.db');
  const epochs = 12;
  const config = writeRunConfig(dir.path, { store, checkpointDir: dir.join('ckpt'), epochs });
  const train = spawnCli(['train', config], { cwd: dir.path, t });
  let done = 0;
  createInterface({ input: train.child.stderr! }).on('line', (line) => {
    if (EPOCH_DONE.test(line)) done++;
  });
  const epochsDone = () => done;
  await waitUntil("the first epoch's metrics in the store", () => epochRowCount(store) >= 1, 60_000);
  const lock = await holdWriteLock(store, 20_000, t);
  const atLock = epochsDone();
  await lock.released;
  const duringLock = epochsDone() - atLock;
  const r = await train.exited;
  assert.equal(r.code, 0, r.stderr);
  // Not blocked by the lock: epochs went on while it was held (a blocking write stops at the next epoch's end).
  assert.ok(duringLock >= 3, `only ${duringLock} epoch(s) trained while the store was locked:\n${r.stderr}`);
  assert.match(
    r.stderr,
    /bnn: warning: \S+bnn\.db is locked by another process; keeping epoch metrics, .* in memory and retrying with backoff/,
  );
  assert.match(r.stderr, /bnn: \S+bnn\.db is free again after [\d.]+ s; the epoch metrics, .* kept meanwhile are written/);
  const runs = storedRuns(store);
  assert.deepEqual(
    runs.map((x) => x.status),
    ['COMPLETED'],
  );
  assert.deepEqual(
    storedEpochs(store, runs[0]!.id),
    Array.from({ length: epochs }, (_, i) => i + 1),
  );
});

test('faults store - a lock held past --lock-timeout-ms when the run starts: exit 1 naming the lock, the wait and the flag; no run row', async (t) => {
  const dir = await tmpDir({ t, prefix: 'bnn-faults-lock-' });
  const store = dir.join('bnn.db');
  openStore(store).close(); // the schema, so the other client can lock it
  const config = writeRunConfig(dir.path, { store, checkpointDir: dir.join('ckpt') });
  const lock = await holdWriteLock(store, 60_000, t);
  const r = await runCli(['train', config, '--quiet', '--lock-timeout-ms', '1500'], { cwd: dir.path, timeoutMs: 60_000 });
  lock.child.kill('SIGKILL');
  await lock.released;
  assertUserError(r, [
    `bnn: error: ${store}: the database is locked by another process (waited 1.5 s); try again when it has finished, or give bnn train a longer --lock-timeout-ms`,
  ]);
  assert.deepEqual(storedRuns(store), []);
});

test('faults store - a lock that outlasts --lock-timeout-ms at the end of a run: exit 1 saying what was not written; the run shows ABANDONED, not RUNNING', async (t) => {
  const dir = await tmpDir({ t, prefix: 'bnn-faults-lock-' });
  const store = dir.join('bnn.db');
  const config = writeRunConfig(dir.path, { store, checkpointDir: dir.join('ckpt'), epochs: 3 });
  const train = spawnCli(['train', config, '--lock-timeout-ms', '2000'], { cwd: dir.path, t });
  await waitUntil("the first epoch's metrics in the store", () => epochRowCount(store) >= 1, 60_000);
  const lock = await holdWriteLock(store, 60_000, t);
  const r = await train.exited;
  lock.child.kill('SIGKILL');
  await lock.released;
  assertUserError(r, [
    /bnn: error: \S+bnn\.db: the database is locked by another process \(waited 2 s\); \d+ queued write\(s\) of epoch metrics, .* are not in it/,
    /run \S+ is not recorded as ended \(it shows as ABANDONED once this process has exited\); stop the process holding the lock, or give bnn train a longer --lock-timeout-ms/,
  ]);
  const [run] = storedRuns(store);
  const shown = await runCli(['runs', '--store', store, '--json'], { cwd: dir.path });
  assert.equal(shown.code, 0, shown.stderr);
  assert.deepEqual(
    (JSON.parse(shown.stdout) as { id: string; status: string }[]).map((x) => [x.id, x.status]),
    [[run!.id, 'ABANDONED']],
  );
});
