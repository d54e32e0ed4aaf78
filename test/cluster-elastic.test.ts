import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { spawnCli } from './helpers/cluster.js';
import { tmpDir } from './helpers/tmp.js';
import { listEvents, listMembers, openStore } from '../src/store/index.js';

/** A 5% class-stratified Fashion-MNIST subset (3000 images, 30 global batches of 100 per epoch, 2 epochs), fp32 MLP without BatchNorm. */
function writeConfig(dir: string): string {
  const file = join(dir, 'fmnist.yaml');
  writeFileSync(
    file,
    `name: elastic-fmnist
seed: 7
dataset: { name: fashion-mnist, subset: 0.05 }
model: { arch: mlp, hidden: [64], precision: fp32, batchNorm: false }
train:
  epochs: 2
  batchSize: 100
  optimizer: { lr: 0.003 }
engine: { backend: cpu, threads: 1 }
store: ${join(dir, 'bnn.db')}
checkpointDir: ${join(dir, 'ckpt')}
`,
  );
  return file;
}

function workerPids(launcher: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => Number(f[1]) === launcher && f.includes('worker'))
    .map((f) => Number(f[0]));
}

function finalAcc(db: string, runId: string): number {
  const store = openStore(db, { readonly: true });
  try {
    return (store.sqlite.prepare('SELECT final_test_acc AS acc FROM runs WHERE id = ?').get(runId) as { acc: number }).acc;
  } finally {
    store.close();
  }
}

test('cluster elastic - kill -9 of one of 3 workers mid-epoch: detected at once, the group re-forms with 2, the run completes within 1 point of an undisturbed run', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeConfig(dir.path);
  const db = dir.join('bnn.db');

  const calm = await runCli(['launch', '--local', '3', config, '--json'], { cwd: dir.path, timeoutMs: 60_000 });
  assert.equal(calm.code, 0, calm.stderr);
  const undisturbed = JSON.parse(calm.stdout.trim().split('\n').at(-1)!) as { runId: string; finalTestAcc: number };

  const launch = spawnCli(['launch', '--local', '3', config], { cwd: dir.path, t });
  const [, runId] = await launch.waitForLine(/^bnn: run (\S+) /, 30_000);
  await launch.waitForLine(/^epoch 1\/2 /, 60_000);
  const workers = workerPids(launch.child.pid!);
  assert.equal(workers.length, 3);
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = Date.now();
  process.kill(workers[2]!, 'SIGKILL');
  const r = await launch.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^\S+Z info +generation 2: 2 worker\(s\) \(worker \S+ \(rank \d\) lost: /m);

  const store = openStore(db, { readonly: true });
  let events: ReturnType<typeof listEvents>;
  let members: ReturnType<typeof listMembers>;
  try {
    events = listEvents(store.db, runId!);
    members = listMembers(store.db, runId!);
  } finally {
    store.close();
  }
  const dead = events.find((e) => e.kind === 'dead');
  assert.ok(dead, events.map((e) => e.kind).join(' '));
  const detectionMs = Date.parse(dead.at) - killedAt;
  assert.ok(detectionMs >= 0 && detectionMs <= 10_000, `detected ${detectionMs} ms after the kill`);
  const generation = events.find((e) => e.kind === 'generation');
  assert.ok(generation);
  assert.deepEqual([generation.detail!.generation, generation.detail!.previous, generation.detail!.worldSize], [2, 1, 2]);
  assert.match(String(generation.detail!.reason), /lost: its assignment stream closed/);
  assert.deepEqual(
    members
      .filter((m) => m.generation === 1)
      .map((m) => m.reason)
      .sort(),
    ['dead', 'generation-ended', 'generation-ended'],
  );
  assert.deepEqual(
    members.filter((m) => m.generation === 2).map((m) => [m.rank, m.worldSize]),
    [
      [0, 2],
      [1, 2],
    ],
  );
  assert.equal(events.at(-1)!.kind, 'completed');

  const disturbed = finalAcc(db, runId!);
  t.diagnostic(`detection ${detectionMs} ms; final test accuracy undisturbed ${undisturbed.finalTestAcc}, one of 3 killed ${disturbed}`);
  assert.ok(
    undisturbed.finalTestAcc > 0.7,
    `undisturbed accuracy ${undisturbed.finalTestAcc}: the config must learn for the comparison to mean anything`,
  );
  assert.ok(Math.abs(disturbed - undisturbed.finalTestAcc) <= 0.01, `accuracy ${disturbed} vs undisturbed ${undisturbed.finalTestAcc}`);
});
