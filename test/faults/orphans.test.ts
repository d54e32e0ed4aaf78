// No orphan states (hardening, item 4): a failure before the run row writes none; a `bnn train`
// killed without a word (kill -9) leaves a run that `bnn runs` shows as ABANDONED and that
// `bnn resume` continues to COMPLETED. Real CLI processes, a real SQLite file.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { listCheckpoints, openStore } from '../../src/store/index.js';
import { queryRuns } from '../../src/store/run-queries.js';
import { runCli } from '../helpers/cli.js';
import { spawnCli, writeTinyConfig } from '../helpers/cluster.js';
import { tmpDir } from '../helpers/tmp.js';

function storedRuns(db: string) {
  const store = openStore(db, { readonly: true });
  try {
    return queryRuns(store.db, { sort: 'created', descending: false, limit: 100 });
  } finally {
    store.close();
  }
}

test('faults: an unwritable checkpoint directory fails before the run is recorded (exit 1, no stack, no row)', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path);
  // a file where a directory of the path should be: fails for root too
  writeFileSync(dir.join('in-the-way'), 'x');
  const ckpt = dir.join('in-the-way', 'ckpt');
  const r = await runCli(['train', config, '--checkpoint-dir', ckpt], { cwd: dir.path, timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`^bnn: error: checkpoint directory ${ckpt}: cannot write there \\(.*\\); pass a writable directory with --checkpoint-dir`),
  );
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  const db = dir.join('bnn.db');
  assert.deepEqual(existsSync(db) ? storedRuns(db) : [], [], 'no run row');
});

test('faults: bnn train killed -9 shows ABANDONED and bnn resume continues it to COMPLETED', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, { epochs: 12 });
  // ten times the samples per epoch, so the kill lands well before the end
  writeFileSync(config, readFileSync(config, 'utf8').replace('trainSize: 310', 'trainSize: 3100'));
  mkdirSync(dir.join('ckpt'), { recursive: true });
  const train = spawnCli(['train', config], { cwd: dir.path, t });
  await train.waitForLine(/^epoch 2\/12 /, 120_000);
  process.kill(-train.child.pid!, 'SIGKILL');
  const killed = await train.exited;
  assert.equal(killed.signal, 'SIGKILL');
  const db = dir.join('bnn.db');
  const [stored] = storedRuns(db);
  assert.equal(stored?.status, 'RUNNING', 'the store still says RUNNING: nothing wrote the end');

  const runs = await runCli(['runs', '--store', db], { cwd: dir.path });
  assert.equal(runs.code, 0, runs.stderr);
  assert.match(runs.stdout, new RegExp(`^${stored!.id}\\s+tiny\\s+ABANDONED\\s`, 'm'));
  assert.match(runs.stderr, new RegExp(`bnn resume ${stored!.id} --store ${db} continues it`));
  const only = await runCli(['runs', '--store', db, '--status', 'ABANDONED', '--json'], { cwd: dir.path });
  assert.deepEqual(
    (JSON.parse(only.stdout) as Array<{ id: string; status: string }>).map((r) => [r.id, r.status]),
    [[stored!.id, 'ABANDONED']],
  );

  const resumed = await runCli(['resume', stored!.id, '--store', db], { cwd: dir.path, timeoutMs: 240_000 });
  assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
  assert.match(resumed.stderr, /is ABANDONED \(recorded as RUNNING, but .*\); continuing it/);
  const [done] = storedRuns(db);
  assert.equal(done?.status, 'COMPLETED');
  const store = openStore(db, { readonly: true });
  try {
    assert.equal(listCheckpoints(store.db, done!.id).at(-1)?.epoch, 12, 'trained to the last epoch');
  } finally {
    store.close();
  }
});
