import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';
import { processesMentioning, writeTinyConfig } from './helpers/cluster.js';
import { listEpochMetrics, listHardware, listMembers, listWorkers, openStore } from '../src/store/index.js';

test('cluster launch - --local 2 completes, records the run COMPLETED with its epoch metrics, and leaves no process behind', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path);
  const r = await runCli(['launch', '--local', '2', config, '--json'], { cwd: dir.path, timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { runId: string; status: string; epochs: unknown[]; coordinator: string };
  assert.equal(out.status, 'COMPLETED');
  assert.equal(out.epochs.length, 2);
  const store = openStore(dir.join('bnn.db'));
  try {
    const row = store.sqlite.prepare('SELECT status, final_test_acc FROM runs WHERE id = ?').get(out.runId) as {
      status: string;
      final_test_acc: number;
    };
    assert.equal(row.status, 'COMPLETED');
    assert.ok(row.final_test_acc > 0);
    const metrics = listEpochMetrics(store.db, out.runId);
    assert.deepEqual(
      metrics.map((m) => m.epoch),
      [1, 2],
    );
    for (const m of metrics) assert.ok(Number.isFinite(m.trainLoss) && m.testAcc !== null && m.samplesPerS! > 0);
    const members = listMembers(store.db, out.runId);
    assert.deepEqual(
      members.map((m) => [m.generation, m.rank, m.worldSize]),
      [
        [1, 0, 2],
        [1, 1, 2],
      ],
    );
    assert.ok(members.every((m) => m.leftAt !== null));
    // Each worker registered with its hardware.
    assert.deepEqual(
      listWorkers(store.db)
        .map((w) => w.id)
        .sort(),
      members.map((m) => m.workerId).sort(),
    );
    for (const m of members) assert.equal(listHardware(store.db, { workerId: m.workerId }).length, 1);
  } finally {
    store.close();
  }
  assert.deepEqual(processesMentioning(out.coordinator), []);
});

test('cluster launch - a missing nats-server is a clear error naming apt-get install nats-server', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path);
  const r = await runCli(['launch', '--local', '1', config, '--nats-server-bin', dir.join('no-such-nats-server')], { cwd: dir.path });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /apt-get install nats-server/);
});

test('cluster launch - without --local is bad usage', async (t) => {
  const dir = await tmpDir({ t });
  const r = await runCli(['launch', writeTinyConfig(dir.path)], { cwd: dir.path });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--local/);
});

test('cluster launch - fp16 gradient compression also completes', async (t) => {
  const dir = await tmpDir({ t });
  const r = await runCli(['launch', '--local', '2', writeTinyConfig(dir.path), '--compression', 'fp16', '--json', '--quiet'], {
    cwd: dir.path,
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout.trim()) as { status: string }).status, 'COMPLETED');
});
