// A run that diverges, through the real CLI (a child process), a real SQLite file and real
// Fashion-MNIST (a small subset): with a learning rate of 1e30 the first step is still finite
// (the weights jump to ±1e30) and the second one's loss is NaN. The run must end with one clear
// `diverged` line (exit 1, no stack), be FAILED with that reason in the store, and leave the
// checkpoint written before it intact: its sha256 verifies and it loads, all finite. With
// `train.onNonFinite: skip` the NaN steps are skipped and counted in the store instead.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/checkpoint/index.js';
import { initEngine } from '../../src/engine/select.js';
import { getRun, listCheckpoints, listEpochMetrics, listEvents, listRuns, openStore } from '../../src/store/index.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { prepareTraining } from '../../src/train/setup.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir, type TmpDir } from '../helpers/tmp.js';

await initEngine({ backend: 'cpu', threads: 1 });

/** `bnn train` of the example with a huge learning rate on 2% of the data (5 steps an epoch), 2 epochs. */
async function trainDiverging(dir: TmpDir, ...extra: string[]) {
  const store = dir.join('bnn.db');
  const r = await runCli(
    [
      'train',
      'examples/fmnist-mlp-binary.yaml',
      '--lr',
      '1e30',
      '--binary-lr',
      '1e30',
      '--epochs',
      '2',
      '--subset',
      '0.02',
      '--set',
      'model.hidden=[256, 256]',
      '--store',
      store,
      '--checkpoint-dir',
      dir.join('ckpt'),
      ...extra,
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.timedOut, false);
  return { ...r, store };
}

/** The one error line and nothing of a stack or an internal error. */
function assertOneErrorLine(stderr: string, expected: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.at(-1), `bnn: error: ${expected}`, stderr);
  assert.equal(lines.filter((l) => l.startsWith('bnn: error:')).length, 1, stderr);
  assert.ok(!lines.some((l) => /^\s+at /.test(l) || l.includes('internal error')), stderr);
}

/** The run's only row, checkpoints, epoch metrics and events. */
function recorded(store: string) {
  const s = openStore(store, { readonly: true });
  try {
    const runs = listRuns(s.db);
    assert.equal(runs.length, 1);
    const id = runs[0]!.id;
    return {
      run: getRun(s.db, id),
      checkpoints: listCheckpoints(s.db, id),
      epochs: listEpochMetrics(s.db, id),
      events: listEvents(s.db, id),
    };
  } finally {
    s.close();
  }
}

/** Reads the checkpoint with its recorded sha256 and loads it into the run's model and optimizer; returns its step. */
async function verifyAndLoad(run: ReturnType<typeof recorded>['run'], c: { path: string; sha256: string }): Promise<number> {
  const file = await readSafetensors(c.path, { expectedSha256: c.sha256 });
  for (const [name, t] of Object.entries(file.tensors)) {
    assert.ok((t.data as Float32Array).every(Number.isFinite), `${name} is finite`);
  }
  const setup = await prepareTraining(run.config);
  try {
    const meta = await loadCheckpoint(c.path, setup.model, setup.optimizer, c.sha256);
    assert.equal(setup.optimizer.step, meta.step);
    return meta.step;
  } finally {
    setup.model.dispose();
  }
}

test('faults diverge - a NaN loss ends bnn train with exit 1 and one diverged line; the run is FAILED with it; the last checkpoint verifies and loads', async (t) => {
  const dir = await tmpDir({ t });
  const r = await trainDiverging(dir, '--set', 'train.checkpointEverySteps=1');
  const reason = 'diverged: loss is NaN at epoch 1 step 2';
  assert.equal(r.code, 1, r.stderr);
  assertOneErrorLine(r.stderr, reason);
  const { run, checkpoints, epochs, events } = recorded(r.store);
  assert.deepEqual([run.status, run.error], ['FAILED', reason]);
  assert.deepEqual(events.at(-1)?.detail, { error: reason });
  assert.deepEqual(epochs, [], 'no epoch ended: nothing NaN recorded');
  // the checkpoint of step 1 (before the divergence) is the only one, on disk as in the store
  assert.deepEqual(
    checkpoints.map((c) => c.step),
    [1],
  );
  assert.deepEqual(readdirSync(path.dirname(checkpoints[0]!.path)), ['step-00000001.safetensors']);
  assert.equal(await verifyAndLoad(run, checkpoints[0]!), 1);

  const show = await runCli(['show', run.id, '--store', r.store], { timeoutMs: 30_000 });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^status:\s+FAILED$/m);
  assert.match(show.stdout, new RegExp(`^error:\\s+${reason}$`, 'm'));
});

test('faults diverge - with train.onNonFinite: skip the NaN steps are skipped and counted in the store; an epoch of nothing but skips fails the run', async (t) => {
  const dir = await tmpDir({ t });
  // epoch 1: step 1 applied, steps 2-5 skipped; epoch 2: every step skipped (no evaluation until the last epoch)
  const r = await trainDiverging(dir, '--set', 'train.onNonFinite=skip', '--set', 'train.evalEveryEpoch=false');
  const reason = 'diverged: every step of the epoch was skipped (train.onNonFinite: skip) at epoch 2 step 10';
  assert.equal(r.code, 1, r.stderr);
  assertOneErrorLine(r.stderr, reason);
  assert.match(r.stderr, /^\S+Z (info|warn) +step 2: skipped: loss is NaN$/m);
  const { run, checkpoints, epochs, events } = recorded(r.store);
  assert.deepEqual([run.status, run.error], ['FAILED', reason]);
  assert.deepEqual(
    events.filter((e) => e.kind === 'skipped').map((e) => e.detail),
    [{ epoch: 1, steps: 4 }],
  );
  assert.equal(epochs.length, 1);
  assert.ok(Number.isFinite(epochs[0]!.trainLoss), `epoch 1 train loss ${epochs[0]!.trainLoss}`);
  assert.deepEqual(
    checkpoints.map((c) => c.step),
    [5],
  );
  assert.equal(await verifyAndLoad(run, checkpoints[0]!), 5);
});

test('faults diverge - train.onNonFinite takes fail or skip; anything else is a usage error naming both', async (t) => {
  const dir = await tmpDir({ t });
  const r = await runCli(['train', 'examples/fmnist-mlp-binary.yaml', '--set', 'train.onNonFinite=ignore', '--store', dir.join('bnn.db')]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(
    r.stderr,
    "bnn: error: --set: 'train.onNonFinite=ignore' is not valid; expected train.onNonFinite to be one of fail, skip\n",
  );
  assert.deepEqual(readdirSync(dir.path), [], 'nothing written');
});
