import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tmpDir } from './helpers/tmp.js';
import { processesMentioning, spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { listEvents, openStore } from '../src/store/index.js';

const STARTED = /^bnn: run (\S+) .* coordinator (127\.0\.0\.1:\d+),/;

function runRow(db: string, runId: string) {
  const store = openStore(db, { readonly: true });
  try {
    const row = store.sqlite.prepare('SELECT status, error FROM runs WHERE id = ?').get(runId) as { status: string; error: string | null };
    return { ...row, events: listEvents(store.db, runId).map((e) => e.kind) };
  } finally {
    store.close();
  }
}

test('cluster stop - Ctrl-C (SIGINT to the process group) cancels the run, stops every child and exits 130', async (t) => {
  const dir = await tmpDir({ t });
  const launch = spawnCli(['launch', '--local', '2', writeTinyConfig(dir.path, { epochs: 200 })], { cwd: dir.path, t });
  const [, runId, address] = await launch.waitForLine(STARTED);
  await launch.waitForLine(/^epoch 1\/200 /);
  process.kill(-launch.child.pid!, 'SIGINT');
  const r = await launch.exited;
  assert.equal(r.code, 130, r.stderr);
  const row = runRow(dir.join('bnn.db'), runId!);
  assert.equal(row.status, 'CANCELLED');
  assert.ok(row.events.includes('cancelled'));
  assert.deepEqual(processesMentioning(address!), []);
});

// With survivors the group re-forms (test/cluster-elastic.test.ts); the last worker's death fails the run.
test('cluster stop - the only worker killed mid-run fails the run at once; launch exits 1 and stops the rest', async (t) => {
  const dir = await tmpDir({ t });
  const launch = spawnCli(['launch', '--local', '1', writeTinyConfig(dir.path, { epochs: 200 })], { cwd: dir.path, t });
  const [, runId, address] = await launch.waitForLine(STARTED);
  await launch.waitForLine(/^epoch 1\/200 /);
  const workers = processesMentioning(`--coordinator ${address}`);
  assert.equal(workers.length, 1, workers.join('\n'));
  process.kill(Number(workers[0]!.trim().split(/\s+/)[0]), 'SIGKILL');
  const r = await launch.exited;
  assert.equal(r.code, 1, r.stderr);
  const row = runRow(dir.join('bnn.db'), runId!);
  assert.equal(row.status, 'FAILED');
  assert.match(row.error ?? '', /lost: its assignment stream closed; no worker of the run is left/);
  assert.ok(row.events.includes('dead'));
  assert.deepEqual(processesMentioning(address!), []);
});
