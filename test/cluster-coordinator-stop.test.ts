import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { listCheckpoints, listEvents, openStore } from '../src/store/index.js';
import { runCli } from './helpers/cli.js';
import { logMessages, spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const ENV = { BNN_CLUSTER_TOKEN: 'stop-tok' };

function runState(db: string, runId: string) {
  const store = openStore(db, { readonly: true });
  try {
    const row = store.sqlite.prepare('SELECT status, error FROM runs WHERE id = ?').get(runId) as { status: string; error: string | null };
    const events = listEvents(store.db, runId);
    return { ...row, checkpoints: listCheckpoints(store.db, runId), events: events.map((e) => e.kind), details: events };
  } finally {
    store.close();
  }
}

async function until<T>(what: string, fn: () => T | null, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('coordinator stop - SIGTERM with a run in flight: the run recorded resumable (FAILED, naming the signal), its rank 0 checkpointed where it stopped, its workers gone, exit 0; bnn resume completes it', async (t) => {
  const dir = await tmpDir({ t });
  const db = dir.join('bnn.db');
  const nats = await startTestNatsServer({ t });
  const coord = spawnCli(['coordinator', '--port', '0', '--store', db, '--nats', nats.url, '--no-http', '--heartbeat-ms', '200'], {
    cwd: dir.path,
    env: ENV,
    t,
  });
  const [, address] = await coord.waitForLine(/^coordinator listening on (127\.0\.0\.1:\d+) /, 30_000);
  const workers = [0, 1].map(() =>
    spawnCli(['worker', '--coordinator', address!, '--threads', '1', '--backend', 'cpu', '--once'], { cwd: dir.path, env: ENV, t }),
  );
  const config = writeTinyConfig(dir.path, { epochs: 12 });
  const submitted = await runCli(['launch', '--coordinator', address!, '--workers', '2', config, '--detach', '--json'], {
    cwd: dir.path,
    env: ENV,
    timeoutMs: 60_000,
  });
  assert.equal(submitted.code, 0, submitted.stderr);
  const { runId } = JSON.parse(submitted.stdout) as { runId: string };
  // training, with a checkpoint recorded (one at each epoch end)
  await until('a checkpoint', () => (runState(db, runId).checkpoints.length > 0 ? true : null), 60_000);

  coord.child.kill('SIGTERM');
  const stopped = await coord.exited;
  assert.deepEqual([stopped.code, stopped.signal], [0, null], stopped.stderr);
  const state = runState(db, runId);
  assert.equal(state.status, 'FAILED', 'not left RUNNING');
  assert.equal(state.error, 'coordinator stopped (SIGTERM)');
  // before leaving it let rank 0 checkpoint where it stopped (as a CancelRun does), or saw it leave
  // having nothing newer to checkpoint (it stopped right at a checkpoint)
  const drained = new RegExp(
    `^run ${runId}: rank 0 (?:checkpointed step (\\d+) on its way out|left without a newer checkpoint)$`,
    'm',
  ).exec(logMessages(stopped.stderr));
  assert.ok(drained, stopped.stderr);
  const lastStep = state.checkpoints.at(-1)!.step;
  if (drained[1] !== undefined) assert.equal(lastStep, Number(drained[1]));
  // its workers were told to stop (a STOP, then the stream's end): each leaves, none stays behind
  for (const w of workers) {
    const r = await w.exited;
    assert.notEqual(r.code, null, r.stderr);
    assert.equal(existsSync(`/proc/${w.child.pid}`), false);
  }

  const resumed = await runCli(['resume', runId, '--store', db, '--local', '2', '--json'], { cwd: dir.path, timeoutMs: 90_000 });
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { status: string; resumedStep: number };
  assert.equal(out.status, 'COMPLETED');
  assert.equal(out.resumedStep, lastStep);
  assert.equal(runState(db, runId).status, 'COMPLETED');
});

test('coordinator stop - SIGTERM to the rank-0 worker mid-run: it leaves at a step boundary, recorded left (not dead), and exits 0; the run re-forms with the other and completes', async (t) => {
  const dir = await tmpDir({ t });
  const db = dir.join('bnn.db');
  const nats = await startTestNatsServer({ t });
  const coord = spawnCli(['coordinator', '--port', '0', '--store', db, '--nats', nats.url, '--no-http', '--heartbeat-ms', '200'], {
    cwd: dir.path,
    env: ENV,
    t,
  });
  const [, address] = await coord.waitForLine(/^coordinator listening on (127\.0\.0\.1:\d+) /, 30_000);
  const workers = [0, 1].map(() =>
    spawnCli(['worker', '--coordinator', address!, '--threads', '1', '--backend', 'cpu', '--once'], { cwd: dir.path, env: ENV, t }),
  );
  const seen = workers.map((w) => w.waitForLine(/^worker (\S+): run \S+ rank (\d)\/2 generation 1$/, 60_000));
  const ranks = seen.map((p) => p.then((m) => Number(m[2])));
  const submitted = await runCli(
    ['launch', '--coordinator', address!, '--workers', '2', writeTinyConfig(dir.path, { epochs: 12 }), '--detach', '--json'],
    {
      cwd: dir.path,
      env: ENV,
      timeoutMs: 60_000,
    },
  );
  assert.equal(submitted.code, 0, submitted.stderr);
  const { runId } = JSON.parse(submitted.stdout) as { runId: string };
  const rank0At = (await Promise.all(ranks)).indexOf(0);
  const rank0 = workers[rank0At]!;
  const rank0Id = (await seen[rank0At]!)[1]!;
  await until('a checkpoint', () => (runState(db, runId).checkpoints.length > 0 ? true : null), 60_000);

  rank0.child.kill('SIGTERM');
  const left = await rank0.exited;
  assert.deepEqual([left.code, left.signal], [0, null], left.stderr);
  assert.match(left.stderr, /SIGTERM: stopping/);
  await until('the run to end', () => (['RUNNING', 'PENDING'].includes(runState(db, runId).status) ? null : true), 90_000);
  coord.child.kill('SIGTERM');
  const c = await coord.exited;
  assert.equal(c.code, 0, c.stderr);
  const state = runState(db, runId);
  assert.equal(state.status, 'COMPLETED', state.error ?? '');
  // re-formed without it, which it said it left on purpose (SIGTERM): recorded `left`, never lost
  assert.ok(state.events.includes('generation'), `${state.events.join(' ')}\n${c.stderr}`);
  const leftEvent = state.details.find((e) => e.kind === 'left' && (e.detail as { workerId?: string } | null)?.workerId === rank0Id);
  assert.ok(leftEvent, `a 'left' event of ${rank0Id}: ${JSON.stringify(state.details.map((e) => [e.kind, e.detail]))}`);
  assert.match(String((leftEvent.detail as { why?: string }).why), /SIGTERM/, JSON.stringify(leftEvent.detail));
  assert.ok(!state.events.includes('dead'), `no member recorded dead: ${state.events.join(' ')}`);
});
