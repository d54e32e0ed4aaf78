// Checkpoints in NATS JetStream's object store, end to end on real processes: `bnn launch --local 2
// --checkpoint-store nats` keeps at most keepCheckpoints (+ the best epoch's) objects and the
// store's rows name exactly those; a cluster killed with SIGKILL resumes from the object store
// (no checkpoint file on any disk) and ends bit-identical to the uninterrupted run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NatsObjectBucket } from '../src/collective/index.js';
import { localJetstreamDir } from '../src/launch/local-cluster.js';
import { listCheckpoints, listEvents, openStore } from '../src/store/index.js';
import { runCli } from './helpers/cli.js';
import { readWeights, spawnCli } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

/** As test/cluster-resume.test.ts: 10 steps per epoch, 6 epochs, a checkpoint every 4 steps and at epoch ends; keep 2. */
function writeConfig(dir: string): string {
  const file = join(dir, 'os.yaml');
  writeFileSync(
    file,
    `name: resume-os
seed: 5
dataset:
  name: synthetic
  synthetic: { trainSize: 310, testSize: 64, shape: [4, 4, 1], numClasses: 3 }
model: { arch: mlp, hidden: [24], precision: binary, batchNorm: true }
train:
  epochs: 6
  batchSize: 32
  checkpointEverySteps: 4
  keepCheckpoints: 2
  schedule: { name: cosine }
engine: { backend: cpu, threads: 1 }
store: ${join(dir, 'bnn.db')}
checkpointDir: ${join(dir, 'ckpt')}
`,
  );
  return file;
}

function childrenOf(pid: number): number[] {
  return execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, ppid]) => ppid === pid)
    .map(([p]) => p!);
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** .safetensors files anywhere under `dir` (JetStream's own files aside). */
function safetensorsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.safetensors'));
}

test('cluster checkpoint store - launch --local 2 keeps keep+best objects in JetStream; a killed cluster resumes from them bit-identically', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeConfig(dir.path);
  const db = dir.join('bnn.db');
  const ckpt = dir.join('ckpt');

  const full = await runCli(['launch', '--local', '2', config, '--checkpoint-store', 'nats', '--json'], {
    cwd: dir.path,
    timeoutMs: 60_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('full') },
  });
  assert.equal(full.code, 0, full.stderr);
  const fullRun = (JSON.parse(full.stdout.trim().split('\n').at(-1)!) as { runId: string }).runId;

  const launch = spawnCli(['launch', '--local', '2', config, '--checkpoint-store', 'nats'], {
    cwd: dir.path,
    t,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('killed') },
  });
  const [, runId] = await launch.waitForLine(/^bnn: run (\S+) /, 30_000);
  await launch.waitForLine(/^epoch 3\/6 /, 60_000);
  const victims = [...childrenOf(launch.child.pid!), launch.child.pid!];
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  await launch.exited;
  const deadline = Date.now() + 10_000;
  while (victims.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

  assert.deepEqual(safetensorsUnder(ckpt), [], 'no checkpoint file on disk: they are all in the object store');
  const resumed = await runCli(['resume', runId!, '--store', db, '--json'], {
    cwd: dir.path,
    timeoutMs: 60_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('resumed') },
  });
  assert.equal(resumed.code, 0, resumed.stderr);
  const out = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { status: string; resumedFrom: string; resumedStep: number };
  assert.equal(out.status, 'COMPLETED');
  assert.match(out.resumedFrom, new RegExp(`^nats-os://bnn-checkpoints/${runId}/(step|epoch)-\\d+\\.safetensors$`));
  assert.ok(out.resumedStep >= 28, `resumed at step ${out.resumedStep}`);
  const r = readWeights(dir.join('resumed'));
  assert.equal(r.steps, 60);
  assert.deepEqual(r.params, readWeights(dir.join('full')).params, 'resumed weights differ from the uninterrupted run');

  // What the object store holds, read by a server on the launch's JetStream files: the rows' objects, no more.
  const server = await startTestNatsServer({ t, jetstream: { storeDir: localJetstreamDir(ckpt) } });
  const bucket = await NatsObjectBucket.open({ servers: server.url, bucket: 'bnn-checkpoints' });
  t.after(() => bucket.close());
  const store = openStore(db, { readonly: true });
  try {
    for (const id of [fullRun, runId!]) {
      const rows = listCheckpoints(store.db, id);
      const objects = await bucket.list(`${id}/`);
      assert.ok(objects.length >= 2 && objects.length <= 3, `run ${id}: ${objects.length} objects (keep 2 + best)`);
      assert.deepEqual(
        rows.map((c) => c.path).sort(),
        objects.map((o) => `nats-os://bnn-checkpoints/${o.name}`),
        `run ${id}: rows and objects`,
      );
      assert.deepEqual(
        rows.map((c) => c.bytes),
        rows.map((c) => objects.find((o) => c.path.endsWith(o.name))!.size),
      );
      const deleted = listEvents(store.db, id).filter((e) => e.kind === 'checkpoints-deleted');
      assert.ok(deleted.length > 0, `run ${id}: retention recorded what it deleted`);
    }
  } finally {
    store.close();
  }
  assert.deepEqual(safetensorsUnder(ckpt), []);
});
