import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { tmpDir } from './helpers/tmp.js';
import { logMessages, processesMentioning, spawnCli, writeTinyConfig } from './helpers/cluster.js';
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

/** Live (not exited, not a zombie) direct children of `pid`: a launcher's nats-server, coordinator and workers. */
function liveChildrenOf(pid: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' });
  const alive = (p: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([p, ppid]) => ppid === pid && alive(p!))
    .map(([p]) => p!);
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

test('cluster stop - SIGTERM to the launcher alone (a scheduler stopping it) does what Ctrl-C does: the run CANCELLED, every child stopped, exit 143', async (t) => {
  const dir = await tmpDir({ t });
  const launch = spawnCli(['launch', '--local', '2', writeTinyConfig(dir.path, { epochs: 200 })], { cwd: dir.path, t });
  const [, runId, address] = await launch.waitForLine(STARTED);
  await launch.waitForLine(/^epoch 1\/200 /);
  const children = liveChildrenOf(launch.child.pid!);
  assert.equal(children.length, 4, 'nats-server, coordinator, 2 workers');
  launch.child.kill('SIGTERM');
  const r = await launch.exited;
  assert.deepEqual(
    children.filter((p) => existsSync(`/proc/${p}`)),
    [],
    'every child exited (and was reaped)',
  );
  assert.deepEqual([r.code, r.signal], [143, null], r.stderr);
  assert.match(logMessages(r.stderr), /^bnn: SIGTERM: cancelling run /m);
  assert.match(logMessages(r.stderr), new RegExp(`^bnn: continue it from its last checkpoint with: bnn resume ${runId} `, 'm'));
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
