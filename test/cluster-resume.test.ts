import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { openSync, readdirSync, readFileSync, readSync, closeSync, writeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli } from './helpers/cli.js';
import { readWeights, spawnCli } from './helpers/cluster.js';
import { tmpDir } from './helpers/tmp.js';
import { createRun, joinRun, listCheckpoints, listEvents, markRunning, openStore, touchWorker, upsertWorker } from '../src/store/index.js';
import { loadConfig } from '../src/config/index.js';

/**
 * A binary MLP with BatchNorm on synthetic data: 310 samples in global batches of 32 (10 steps per
 * epoch, the last batch 22), 6 epochs, a checkpoint every 4 steps and at each epoch end.
 */
function writeConfig(dir: string, compression: 'none' | 'sign-ef' = 'none'): string {
  const file = join(dir, 'bn.yaml');
  writeFileSync(
    file,
    `name: resume-bn
seed: 5
dataset:
  name: synthetic
  synthetic: { trainSize: 310, testSize: 64, shape: [4, 4, 1], numClasses: 3 }
model: { arch: mlp, hidden: [24], precision: binary, batchNorm: true }
train:
  epochs: 6
  batchSize: 32
  checkpointEverySteps: 4
  compression: ${compression}
  schedule: { name: cosine }
engine: { backend: cpu, threads: 1 }
store: ${join(dir, 'bnn.db')}
checkpointDir: ${join(dir, 'ckpt')}
`,
  );
  return file;
}

/** Direct children of `pid` (the launcher's nats-server, coordinator and workers). */
function childrenOf(pid: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, ppid]) => ppid === pid)
    .map(([p]) => p!);
}

/** Running (not gone, not a zombie waiting for its reaper). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function runState(db: string, runId: string) {
  const store = openStore(db, { readonly: true });
  try {
    const row = store.sqlite.prepare('SELECT status FROM runs WHERE id = ?').get(runId) as { status: string };
    return { status: row.status, checkpoints: listCheckpoints(store.db, runId), events: listEvents(store.db, runId) };
  } finally {
    store.close();
  }
}

/**
 * An uninterrupted run of the config (weights dumped to `full/`), then the same config launched
 * again and the whole cluster killed with SIGKILL once epoch 3 of 6 is done.
 */
async function fullRunThenKilledRun(t: TestContext, compression: 'none' | 'sign-ef') {
  const dir = await tmpDir({ t });
  const config = writeConfig(dir.path, compression);
  const db = dir.join('bnn.db');

  const full = await runCli(['launch', '--local', '2', config, '--quiet'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('full') },
  });
  assert.equal(full.code, 0, full.stderr);

  const launch = spawnCli(['launch', '--local', '2', config], { cwd: dir.path, t, env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('killed') } });
  const [, runId] = await launch.waitForLine(/^bnn: run (\S+) /, 30_000);
  await launch.waitForLine(/^epoch 3\/6 /, 40_000);
  // Everything at once, as a power cut would: workers, coordinator, nats-server, launcher.
  const victims = [...childrenOf(launch.child.pid!), launch.child.pid!];
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  await launch.exited;
  // SIGKILL is delivered at once but a loaded machine may take a moment to tear a process down.
  const deadline = Date.now() + 10_000;
  while (victims.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const pid of victims) assert.ok(!alive(pid), `process ${pid} survived 10 s after SIGKILL`);
  return { dir, db, runId: runId! };
}

test('cluster resume - kill -9 of the whole cluster mid-run, a corrupted newest checkpoint refused, bnn resume ends bit-identical to an uninterrupted run', async (t) => {
  const { dir, db, runId } = await fullRunThenKilledRun(t, 'none');

  const before = runState(db, runId);
  assert.equal(before.status, 'RUNNING', 'the coordinator died with the run in flight');
  const steps = before.checkpoints.map((c) => c.step);
  assert.ok(steps.includes(30) && steps.includes(28), `checkpoints every 4 steps and at epoch ends: ${steps.join(' ')}`);
  const newest = before.checkpoints.at(-1)!;
  const previous = before.checkpoints.at(-2)!;
  // Flip one byte of the newest checkpoint's tensor data: its sha256 no longer matches the store.
  const fd = openSync(newest.path, 'r+');
  const at = statSync(newest.path).size - 5;
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  writeSync(fd, Buffer.from([b[0]! ^ 0xff]), 0, 1, at);
  closeSync(fd);

  const resumed = await runCli(['resume', runId, '--store', db, '--json'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('resumed') },
  });
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as {
    status: string;
    resumedFrom: string;
    resumedStep: number;
    warnings: string[];
  };
  assert.equal(out.status, 'COMPLETED');
  assert.equal(out.resumedFrom, previous.path, 'the previous good checkpoint is used');
  assert.equal(out.resumedStep, previous.step);
  assert.equal(out.warnings.length, 1);
  assert.ok(out.warnings[0]!.includes(newest.path) && /sha256 mismatch/.test(out.warnings[0]!), out.warnings[0]);

  const after = runState(db, runId);
  assert.equal(after.status, 'COMPLETED');
  const kinds = after.events.map((e) => e.kind);
  assert.ok(kinds.includes('resumed') && kinds.includes('checkpoint-refused'), kinds.join(' '));
  // retention (default keep 3, plus the best epoch's): the files on disk are the rows' and no more
  const files = readdirSync(join(dir.path, 'ckpt', runId)).filter((f) => f.endsWith('.safetensors'));
  assert.ok(files.length <= 4, `${files.length} checkpoint files left: ${files.join(' ')}`);
  assert.deepEqual(files.map((f) => join(dir.path, 'ckpt', runId, f)).sort(), [...new Set(after.checkpoints.map((c) => c.path))].sort());

  const a = readWeights(dir.join('full'));
  const r = readWeights(dir.join('resumed'));
  assert.equal(r.steps, 60);
  assert.deepEqual(r.params, a.params, 'resumed weights differ from the uninterrupted run');
  assert.deepEqual(readWeights(dir.join('resumed'), 1).params, r.params);
});

test("cluster resume - sign-ef: every rank's error-feedback residuals are checkpointed, so the resumed run is bit-identical too", async (t) => {
  const { dir, db, runId } = await fullRunThenKilledRun(t, 'sign-ef');

  const before = runState(db, runId);
  const newest = before.checkpoints.at(-1)!;
  // the checkpoint holds both ranks' residuals (the worker residual; allgather has no owner one)
  const { readSafetensors } = await import('../src/checkpoint/index.js');
  const file = await readSafetensors(newest.path, { expectedSha256: newest.sha256 });
  const meta = JSON.parse(file.metadata.meta!) as { errorFeedback?: { worldSize: number; length: number; hasOwner: boolean } };
  assert.deepEqual(meta.errorFeedback && [meta.errorFeedback.worldSize, meta.errorFeedback.hasOwner], [2, false]);
  for (const r of [0, 1]) {
    const t0 = file.tensors[`ef/rank${r}`]!;
    assert.equal(t0.data.length, meta.errorFeedback!.length);
    assert.ok(
      (t0.data as Float32Array).some((x) => x !== 0),
      `rank ${r}'s residual is all zero`,
    );
  }

  const resumed = await runCli(['resume', runId, '--store', db, '--json'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('resumed') },
  });
  assert.equal(resumed.code, 0, resumed.stderr);
  const a = readWeights(dir.join('full'));
  const r = readWeights(dir.join('resumed'));
  assert.equal(r.steps, 60);
  assert.deepEqual(r.params, a.params, 'resumed sign-ef weights differ from the uninterrupted run');
});

test('cluster resume - Ctrl-C leaves the run resumable (CANCELLED, a checkpoint at the step it stopped) and bnn resume completes it', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeConfig(dir.path);
  const db = dir.join('bnn.db');
  const launch = spawnCli(['launch', '--local', '2', config, '--set', 'train.checkpointEverySteps=0'], { cwd: dir.path, t });
  const [, runId] = await launch.waitForLine(/^bnn: run (\S+) /, 30_000);
  await launch.waitForLine(/^epoch 1\/6 /, 40_000);
  process.kill(-launch.child.pid!, 'SIGINT');
  const r = await launch.exited;
  assert.equal(r.code, 130, r.stderr);
  const stopped = runState(db, runId!);
  assert.equal(stopped.status, 'CANCELLED');
  const last = stopped.checkpoints.at(-1)!;
  assert.ok(last.step >= 10, `checkpoints: ${stopped.checkpoints.map((c) => c.step).join(' ')}`);

  // another wire format for the rest of the run: the checkpoint (written under `none`) is still the run's
  const resumed = await runCli(['resume', runId!, '--store', db, '--json', '--compression', 'fp16'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('resumed') },
  });
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as {
    status: string;
    resumedFrom: string;
    resumedStep: number;
    warnings: string[];
  };
  assert.deepEqual([out.status, out.resumedFrom, out.resumedStep, out.warnings], ['COMPLETED', last.path, last.step, []]);
  assert.equal(readWeights(dir.join('resumed')).steps, 60);
  const done = runState(db, runId!);
  assert.equal(done.status, 'COMPLETED');
  assert.deepEqual(
    done.events.filter((e) => e.kind === 'resume-requested').map((e) => e.detail),
    [{ path: last.path, step: last.step, workers: 2, compression: 'fp16' }],
  );
});

test('cluster resume - a RUNNING run whose workers still heartbeat is refused (its cluster is alive)', async (t) => {
  const dir = await tmpDir({ t });
  const config = await loadConfig(writeConfig(dir.path));
  const store = openStore(dir.join('bnn.db'));
  const run = createRun(store.db, { config });
  upsertWorker(store.db, { id: 'w-live', hostname: 'h' });
  joinRun(store.db, { runId: run.id, generation: 1, workerId: 'w-live', rank: 0, worldSize: 1 });
  markRunning(store.db, run.id, { backend: 'cpu', threads: 1 });
  // a live coordinator records each heartbeat
  const beat = setInterval(() => touchWorker(store.db, 'w-live'), 500);
  t.after(() => {
    clearInterval(beat);
    store.close();
  });
  const r = await runCli(['resume', run.id, '--store', dir.join('bnn.db')], { cwd: dir.path, timeoutMs: 20_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`run ${run.id} is RUNNING and its worker w-live heartbeated \\d+\\.\\d s ago: its cluster is still alive`),
  );
});
