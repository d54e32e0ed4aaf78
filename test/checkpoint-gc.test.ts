// `bnn rm` and `bnn gc` on a real store with real checkpoint files (local, and in a real
// nats-server's JetStream object store): what they delete, what they print, what they refuse.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CheckpointStores } from '../src/checkpoint/index.js';
import { NatsObjectBucket } from '../src/collective/index.js';
import { defaultRunConfig, type RunConfig } from '../src/config/index.js';
import {
  addCheckpoint,
  addEpochMetrics,
  createRun,
  finishRun,
  getRun,
  listCheckpoints,
  markRunning,
  openStore,
} from '../src/store/index.js';
import { currentProcessOwner } from '../src/util/process-owner.js';
import { bnn } from './helpers/in-process-cli.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const KB = 1000;

/** A run with `n` checkpoints (files of `KB` bytes at steps 10, 20, … with epoch ends every 10), epoch metrics peaking at epoch 2. */
function seedRun(
  db: string,
  ckptDir: string,
  n: number,
  o: { keep?: number; status?: 'COMPLETED' | 'RUNNING-alive' | 'RUNNING-gone' } = {},
) {
  const config: RunConfig = {
    ...defaultRunConfig(),
    checkpointDir: ckptDir,
    train: { ...defaultRunConfig().train, keepCheckpoints: o.keep },
  };
  const store = openStore(db);
  try {
    const owner =
      o.status === 'RUNNING-gone' ? { host: currentProcessOwner().host, pid: 2 ** 22 + 7, start: 'x:y:1' } : currentProcessOwner();
    const run = createRun(store.db, { config, owner });
    const paths: string[] = [];
    for (let e = 1; e <= n; e++) {
      const path = join(ckptDir, run.id, `epoch-${String(e).padStart(4, '0')}.safetensors`);
      mkdirSync(join(ckptDir, run.id), { recursive: true });
      writeFileSync(path, Buffer.alloc(KB, e));
      addCheckpoint(store.db, { runId: run.id, epoch: e, step: e * 10, path, sha256: 'a'.repeat(64), bytes: KB });
      addEpochMetrics(store.db, run.id, {
        epoch: e,
        trainLoss: 1,
        trainAcc: 0.5,
        testLoss: 1,
        testAcc: e === 2 ? 0.9 : 0.5,
        lr: 0.001,
        samplesPerS: 1,
        epochTimeS: 1,
      });
      paths.push(path);
    }
    if (o.status === 'RUNNING-alive' || o.status === 'RUNNING-gone') markRunning(store.db, run.id, { backend: 'cpu', threads: 1, owner });
    else finishRun(store.db, run.id, 'COMPLETED');
    return { id: run.id, paths };
  } finally {
    store.close();
  }
}

function checkpointRows(db: string, id: string) {
  const store = openStore(db, { readonly: true });
  try {
    return listCheckpoints(store.db, id).map((c) => c.path);
  } finally {
    store.close();
  }
}

test('bnn gc - keeps the newest keepCheckpoints plus the best epoch, frees the rest and says how much; --dry-run deletes nothing', async (t) => {
  const dir = await tmpDir({ t });
  const db = dir.join('bnn.db');
  const ckpt = dir.join('ckpt');
  const done = seedRun(db, ckpt, 6, { keep: 2 });
  const live = seedRun(db, ckpt, 4, { status: 'RUNNING-alive' });
  // an orphan: a file no row names, in a run directory of no run
  mkdirSync(join(ckpt, 'gone-run'), { recursive: true });
  writeFileSync(join(ckpt, 'gone-run', 'step-00000001.safetensors'), Buffer.alloc(KB));

  const dry = await bnn('gc', '--store', db, '--dry-run', '--orphans', '--json');
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { dryRun: boolean; bytesFreed: number; runs: { runId: string | null; files: string[] }[] };
  assert.equal(plan.dryRun, true);
  assert.equal(plan.bytesFreed, 4 * KB);
  assert.deepEqual(plan.runs.find((r) => r.runId === done.id)?.files, [done.paths[0], done.paths[2], done.paths[3]]);
  assert.ok(
    done.paths.every((p) => existsSync(p)),
    'a dry run deletes nothing',
  );

  const gc = await bnn('gc', '--store', db, '--orphans');
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, new RegExp(`${done.id}: 3 checkpoint file\\(s\\), 2\\.9 KiB freed`));
  assert.match(gc.stdout, /orphans: 1 checkpoint file\(s\), 1000 B freed/);
  assert.match(gc.stdout, /total: 3\.9 KiB freed/);
  // kept: epochs 5 and 6 (the newest two) and 2 (best test accuracy); rows match the files
  assert.deepEqual(checkpointRows(db, done.id), [done.paths[1], done.paths[4], done.paths[5]]);
  assert.deepEqual(
    done.paths.map((p) => existsSync(p)),
    [false, true, false, false, true, true],
  );
  // the run still training is left alone
  assert.ok(live.paths.every((p) => existsSync(p)));
  assert.equal(checkpointRows(db, live.id).length, 4);

  const again = await bnn('gc', '--store', db);
  assert.match(again.stdout, /^total: 0 B freed$/m);
});

test("bnn rm - deletes a run's checkpoints (and with --purge the run), refuses a live run, names unknown ids, deletes nothing on a refusal", async (t) => {
  const dir = await tmpDir({ t });
  const db = dir.join('bnn.db');
  const ckpt = dir.join('ckpt');
  const a = seedRun(db, ckpt, 3);
  const b = seedRun(db, ckpt, 2);
  const live = seedRun(db, ckpt, 2, { status: 'RUNNING-alive' });
  const abandoned = seedRun(db, ckpt, 1, { status: 'RUNNING-gone' });

  const refused = await bnn('rm', a.id, live.id, '--store', db);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`run ${live.id} is RUNNING; bnn rm refused: the process that runs it .* is still running`));
  assert.ok(
    a.paths.every((p) => existsSync(p)),
    'nothing deleted when one run is refused',
  );

  const unknown = await bnn('rm', 'no-such-run', '--store', db);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no run with id or id prefix "no-such-run"/);
  const noStore = await bnn('rm', a.id, '--store', dir.join('missing.db'));
  assert.equal(noStore.code, 2);
  assert.match(noStore.stderr, /missing\.db does not exist/);

  const rm = await bnn('rm', a.id, abandoned.id, '--store', db, '--json');
  assert.equal(rm.code, 0, rm.stderr);
  const out = JSON.parse(rm.stdout) as {
    runs: { runId: string; files: number; bytesFreed: number; purged: boolean }[];
    bytesFreed: number;
  };
  assert.deepEqual(
    out.runs.map((r) => [r.runId, r.files, r.bytesFreed, r.purged]),
    [
      [a.id, 3, 3 * KB, false],
      [abandoned.id, 1, KB, false],
    ],
  );
  assert.equal(out.bytesFreed, 4 * KB);
  assert.ok(!existsSync(join(ckpt, a.id)), "the run's emptied directory is removed");
  assert.deepEqual(checkpointRows(db, a.id), []);

  const purge = await bnn('rm', b.id, '--store', db, '--purge');
  assert.equal(purge.code, 0, purge.stderr);
  assert.match(purge.stdout, new RegExp(`${b.id}: 2 checkpoint file\\(s\\), 2\\.0 KiB freed; run deleted`));
  const store = openStore(db, { readonly: true });
  try {
    assert.throws(() => getRun(store.db, b.id), /no run with id/);
    assert.equal(getRun(store.db, a.id).id, a.id, 'without --purge the run stays');
  } finally {
    store.close();
  }
});

test('bnn rm / gc - object-store checkpoints need --nats (a clear error), and are deleted through it', async (t) => {
  const dir = await tmpDir({ t });
  const db = dir.join('bnn.db');
  const server = await startTestNatsServer({ t, jetstream: { storeDir: dir.join('js') } });
  const stores = new CheckpointStores({ openBucket: (bucket) => NatsObjectBucket.open({ servers: server.url, bucket }) });
  t.after(() => stores.close());
  const objects = await stores.objects();
  const config: RunConfig = { ...defaultRunConfig(), checkpointDir: dir.join('ckpt'), checkpointStore: 'nats' };
  const store = openStore(db);
  const run = createRun(store.db, { config });
  for (const e of [1, 2]) {
    const location = objects.locationOf(run.id, `epoch-000${e}`);
    const w = await objects.write(location, [Buffer.alloc(5000, e)]);
    addCheckpoint(store.db, { runId: run.id, epoch: e, step: e, path: location, ...w });
  }
  finishRun(store.db, run.id, 'COMPLETED');
  store.close();

  const noNats = await bnn('rm', run.id, '--store', db);
  assert.equal(noNats.code, 2);
  assert.match(
    noNats.stderr,
    new RegExp(`run ${run.id} has 2 checkpoint\\(s\\) in the NATS object store \\(nats-os://bnn-checkpoints/${run.id}/.*pass --nats <url>`),
  );
  assert.equal(checkpointRows(db, run.id).length, 2, 'nothing removed');

  const rm = await bnn('rm', run.id, '--store', db, '--nats', server.url, '--json');
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal((JSON.parse(rm.stdout) as { bytesFreed: number }).bytesFreed, 10_000);
  assert.deepEqual(await objects.list(run.id), []);
});
