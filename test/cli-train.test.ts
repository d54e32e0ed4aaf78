import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { readSafetensors } from '../src/checkpoint/index.js';
import { listCheckpoints, openStore } from '../src/store/index.js';
import { queryRuns } from '../src/store/run-queries.js';
import { runCli } from './helpers/cli.js';
import { spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { tmpDir } from './helpers/tmp.js';

const BAD_CONFIG = `
name: broken
train:
  epochs: 0
  optimizer:
    lr: 0.001
model:
  precision: binari
`;

test('cli train - invalid config exits 1, names the fields, and writes nothing', async (t) => {
  const dir = await tmpDir({ t });
  const config = dir.join('bad.yaml');
  await writeFile(config, BAD_CONFIG);
  const store = dir.join('db', 'bnn.db');
  const r = await runCli(['train', config, '--store', store], { cwd: dir.path });
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.deepEqual(lines, [
    `bnn: error: ${config}:4: train.epochs: must be an integer >= 1, got 0`,
    `bnn: error: ${config}:8: model.precision: must be one of fp32, int8, binary, binary-weights, xnor, rsign, got "binari" (did you mean "binary"?)`,
  ]);
  assert.equal(existsSync(store), false, 'no store created');
  assert.deepEqual(readdirSync(dir.path), ['bad.yaml'], 'nothing written in the working directory (no ./runs)');
});

test('cli train - invalid override values are usage errors (exit 2) naming the flag', async (t) => {
  const dir = await tmpDir({ t });
  const config = dir.join('ok.yaml');
  await writeFile(config, 'seed: 1\n');
  const r = await runCli(['train', config, '--epochs', 'ten', '--set', 'train.optimzer.lr=1'], { cwd: dir.path });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^bnn: error: --set: 'train\.optimzer\.lr=1' is not valid; unknown key "optimzer"/m);
  assert.match(r.stderr, /^bnn: error: --epochs: 'ten' is not valid; expected train\.epochs to be an integer >= 1$/m);
  assert.deepEqual(readdirSync(dir.path), ['ok.yaml']);
});

test('cli train - --json reports config errors as JSON on stdout', async (t) => {
  const dir = await tmpDir({ t });
  const config = dir.join('bad.yaml');
  await writeFile(config, BAD_CONFIG);
  const r = await runCli(['train', config, '--json'], { cwd: dir.path });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, '');
  const { error } = JSON.parse(r.stdout) as { error: { type: string; issues: { path: string; line: number }[] } };
  assert.equal(error.type, 'ConfigError');
  assert.deepEqual(
    error.issues.map((i) => [i.path, i.line]),
    [
      ['train.epochs', 4],
      ['model.precision', 8],
    ],
  );
});

test('cli train - a missing config file exits 1 naming it', async (t) => {
  const dir = await tmpDir({ t });
  const r = await runCli(['train', 'nope.yaml'], { cwd: dir.path });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'bnn: error: nope.yaml: cannot read config file: no such file\n');
});

test('cli train - Ctrl-C stops at the next step boundary: exit 130, the run CANCELLED, a checkpoint at the step it reached', async (t) => {
  const dir = await tmpDir({ t });
  const train = spawnCli(['train', writeTinyConfig(dir.path, { epochs: 100_000 })], { cwd: dir.path, t });
  await train.waitForLine(/^epoch 3\/100000 /, 60_000);
  process.kill(-train.child.pid!, 'SIGINT');
  const r = await train.exited;
  assert.equal(r.code, 130, r.stderr);
  const stoppedAt = Number(/^run \S+ cancelled at step (\d+) after [\d.]+ s; final test accuracy: [\d.]+%$/m.exec(r.stdout)?.[1]);
  assert.ok(stoppedAt >= 20, r.stdout);
  const store = openStore(dir.join('bnn.db'), { readonly: true });
  try {
    const [run] = queryRuns(store.db, { sort: 'created', descending: true, limit: 1 });
    assert.equal(run?.status, 'CANCELLED');
    assert.equal(run?.error, 'interrupted (SIGINT)');
    const last = listCheckpoints(store.db, run!.id).at(-1)!;
    // the stop is checkpointed where it happened (310 samples in batches of 32: 10 steps an epoch,
    // so it is mostly a step checkpoint between two epoch ends)
    assert.equal(last.step, stoppedAt);
    await readSafetensors(last.path, { expectedSha256: last.sha256 });
  } finally {
    store.close();
  }
});

/** Files under `dir` (recursively) whose names end in `.tmp`: half-written checkpoints. */
function tempFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));
}

test('cli train - SIGTERM (a scheduler stopping it) does what Ctrl-C does: exit 143, CANCELLED "interrupted (SIGTERM)", checkpointed, no temp file', async (t) => {
  const dir = await tmpDir({ t });
  const train = spawnCli(['train', writeTinyConfig(dir.path, { epochs: 100_000 })], { cwd: dir.path, t });
  await train.waitForLine(/^epoch 3\/100000 /, 60_000);
  // to the process only, as Kubernetes and docker stop it
  train.child.kill('SIGTERM');
  const r = await train.exited;
  assert.deepEqual([r.code, r.signal], [143, null], r.stderr);
  assert.match(r.stderr, /^(?:\S+Z \w+ +)?bnn: SIGTERM: stopping at the next step boundary/m);
  const stoppedAt = Number(/^run \S+ cancelled at step (\d+) after /m.exec(r.stdout)?.[1]);
  const store = openStore(dir.join('bnn.db'), { readonly: true });
  try {
    const [run] = queryRuns(store.db, { sort: 'created', descending: true, limit: 1 });
    assert.equal(run?.status, 'CANCELLED');
    assert.equal(run?.error, 'interrupted (SIGTERM)');
    const last = listCheckpoints(store.db, run!.id).at(-1)!;
    assert.equal(last.step, stoppedAt);
    await readSafetensors(last.path, { expectedSha256: last.sha256 });
  } finally {
    store.close();
  }
  assert.deepEqual(tempFiles(dir.join('ckpt')), []);
});

test('cli train - a second stop signal leaves at once: exit 130/143 (the second signal), the run CANCELLED saying so, no temp file', async (t) => {
  const dir = await tmpDir({ t });
  const train = spawnCli(['train', writeTinyConfig(dir.path, { epochs: 100_000 })], { cwd: dir.path, t });
  await train.waitForLine(/^epoch 2\/100000 /, 60_000);
  // both at once, so the second arrives before the graceful stop ends; the process may take them
  // in either order, and the exit code is the second one's
  train.child.kill('SIGINT');
  train.child.kill('SIGTERM');
  const r = await train.exited;
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.stdout, '', 'no summary: it left at once');
  const store = openStore(dir.join('bnn.db'), { readonly: true });
  try {
    const [run] = queryRuns(store.db, { sort: 'created', descending: true, limit: 1 });
    assert.equal(run?.status, 'CANCELLED');
    const m = /^interrupted \((SIGINT|SIGTERM)\); left at once on a second (SIGINT|SIGTERM)$/.exec(run?.error ?? '');
    assert.ok(m && m[1] !== m[2], `the run's reason names both signals: ${run?.error}`);
    assert.equal(r.code, m[2] === 'SIGTERM' ? 143 : 130, `exit code of the second signal, ${m[2]}: ${r.stderr}`);
  } finally {
    store.close();
  }
  assert.deepEqual(tempFiles(dir.join('ckpt')), []);
});
