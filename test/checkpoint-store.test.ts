// The checkpoint stores on real components: a local directory, and the object store of a real
// nats-server with JetStream (the permissions `bnn launch --local` gives its user included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  CheckpointError,
  CheckpointStores,
  encodeSafetensors,
  LocalCheckpointStore,
  ObjectCheckpointStore,
  type CheckpointStore,
} from '../src/checkpoint/index.js';
import { NatsObjectBucket, NatsObjectStoreError } from '../src/collective/index.js';
import { LOCAL_NATS_OBJECT_STORE_PERMISSIONS } from '../src/launch/local-cluster.js';
import { startNatsCluster, type NatsClusterHandle } from '../src/launch/nats-server.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

/** A checkpoint-sized file: several tensors, 5 MiB in all (more than one object store chunk). */
function chunks(): Uint8Array[] {
  const big = new Float32Array(1_200_000);
  for (let i = 0; i < big.length; i++) big[i] = Math.sin(i);
  return encodeSafetensors(
    {
      'param/w': { dtype: 'F32', shape: [big.length], data: big },
      'param/b': { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) },
    },
    { format: 'test' },
  );
}

async function roundTrip(store: CheckpointStore, stores: CheckpointStores): Promise<void> {
  const location = store.locationOf('run-a', 'step-00000040');
  const parts = chunks();
  const whole = Buffer.concat(parts);
  const written = await store.write(location, parts);
  assert.equal(written.bytes, whole.length);
  assert.equal(written.sha256, createHash('sha256').update(whole).digest('hex'));
  assert.equal(await store.size(location), whole.length);
  assert.deepEqual(await store.read(location, written.sha256), whole);
  const parsed = await stores.readCheckpoint(location, written.sha256);
  assert.equal(parsed.tensors['param/b']!.data[2], 3);
  assert.equal(parsed.metadata.format, 'test');
  // a wrong hash is refused, naming the location and both hashes
  const wrong = 'f'.repeat(64);
  await assert.rejects(stores.readCheckpoint(location, wrong), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /sha256 mismatch/);
    assert.ok(err.message.includes(location) && err.message.includes(wrong) && err.message.includes(written.sha256), err.message);
    return true;
  });
  // a second checkpoint, list, delete
  const other = store.locationOf('run-a', 'epoch-0001');
  await store.write(other, [Buffer.from('x')]);
  assert.deepEqual(
    (await store.list('run-a')).map((c) => c.location),
    [other, location],
  );
  assert.equal(await stores.delete(location), whole.length);
  assert.equal(await stores.delete(location), 0, 'deleting what is gone frees nothing');
  assert.equal(await store.size(location), null);
  await assert.rejects(stores.readCheckpoint(location, written.sha256), /cannot read/);
  assert.deepEqual(
    (await store.list()).map((c) => c.location),
    [other],
  );
}

test('checkpoint store - local directory: streamed write with sha256, verified read, refused mismatch, list, delete', async (t) => {
  const dir = await tmpDir({ t });
  const store = new LocalCheckpointStore(dir.path);
  assert.equal(store.locationOf('run-a', 'step-00000040'), dir.join('run-a', 'step-00000040.safetensors'));
  await roundTrip(store, new CheckpointStores());
});

test('checkpoint store - NATS JetStream object store with the launch permissions: the same, and objects outlive the server', async (t) => {
  const dir = await tmpDir({ t });
  const creds = { user: 'bnn-test', password: 'secret' };
  const jetstream = { storeDir: dir.join('js') };
  let server = await startTestNatsServer({ t, ...creds, permissions: LOCAL_NATS_OBJECT_STORE_PERMISSIONS, jetstream });
  const open = (url: string) => (bucket: string) => NatsObjectBucket.open({ servers: url, ...creds, bucket });
  let stores = new CheckpointStores({ openBucket: open(server.url) });
  const store = await stores.objects();
  assert.ok(store instanceof ObjectCheckpointStore);
  assert.equal(store.locationOf('run-a', 'step-00000040'), 'nats-os://bnn-checkpoints/run-a/step-00000040.safetensors');
  await roundTrip(store, stores);
  const kept = store.locationOf('run-a', 'epoch-0001');
  const { sha256 } = await store.write(kept, chunks());
  await stores.close();
  await server.stop();
  // a new server on the same JetStream files serves the object again (bnn resume of a local cluster)
  server = await startTestNatsServer({ t, ...creds, permissions: LOCAL_NATS_OBJECT_STORE_PERMISSIONS, jetstream });
  stores = new CheckpointStores({ openBucket: open(server.url) });
  t.after(() => stores.close());
  assert.equal((await stores.readCheckpoint(kept, sha256)).sha256, sha256);
});

/** kill -9 of every node (no clean shutdown: the raft logs are replayed at the next start). */
async function killHard(cluster: NatsClusterHandle): Promise<void> {
  for (const s of cluster.servers) process.kill(s.pid, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (cluster.servers.some((s) => !s.exited)) {
    assert.ok(Date.now() < deadline, 'the killed nats-servers exited');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `fn`, tried again on errors until `timeoutMs` (a restarted cluster's JetStream answers once its leaders are elected). */
async function retryErrors<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

test('checkpoint store - NATS object store on a 3-server JetStream cluster: objects kept after deletes survive kill -9 of every server', async (t) => {
  // nats-server 2.9 replays a filtered stream purge from its raft log, after an unclean stop, as
  // "drop everything up to here": deleting one checkpoint with the client's purge lost all older
  // ones (the bucket deletes chunks one by one instead; see nats-object-store.ts)
  const dir = await tmpDir({ t });
  const creds = { user: 'bnn-test', password: 'secret' };
  const options = { name: 'ckpt', ...creds, permissions: LOCAL_NATS_OBJECT_STORE_PERMISSIONS, jetstream: { storeDir: dir.join('js') } };
  let cluster = await startNatsCluster(3, options);
  t.after(() => cluster.stop());
  const open = () => NatsObjectBucket.open({ servers: cluster.seedList, ...creds, bucket: 'bnn-checkpoints' });
  let bucket = await retryErrors(open, 30_000);
  let store = new ObjectCheckpointStore(bucket);
  // small objects: the streams' raft logs stay below the size at which the servers snapshot them,
  // so the restart replays every operation, the deletes included
  const payload = (step: number) => [Buffer.alloc(300_000, step), Buffer.alloc(1_000_000, step + 1)];
  const written = new Map<string, string>();
  for (const step of [10, 20, 30, 40]) {
    const location = store.locationOf('run-k', `step-000000${step}`);
    written.set(location, (await store.write(location, payload(step))).sha256);
    // retention: the oldest goes once there are three
    if (written.size === 3) {
      const oldest = [...written.keys()][0]!;
      assert.ok((await store.delete(oldest)) > 0);
      written.delete(oldest);
    }
  }
  await bucket.close();
  await killHard(cluster);
  cluster = await startNatsCluster(3, options);
  bucket = await retryErrors(open, 60_000);
  store = new ObjectCheckpointStore(bucket);
  t.after(() => bucket.close());
  // a stream API call may still time out while the restarted servers catch up: tried for up to 30 s
  const listed = await retryErrors(() => store.list('run-k'), 30_000);
  assert.deepEqual(
    listed.map((c) => c.location),
    [...written.keys()],
    'the kept checkpoints are listed after the restart, the deleted one is not',
  );
  for (const [location, sha256] of written) assert.equal((await store.read(location, sha256)).length, 1_300_000);
});

test('checkpoint store - clear errors: no JetStream, no NATS url given', async (t) => {
  const server = await startTestNatsServer({ t });
  await assert.rejects(NatsObjectBucket.open({ servers: server.url, bucket: 'bnn-checkpoints' }), (err: unknown) => {
    assert.ok(err instanceof NatsObjectStoreError);
    assert.match(err.message, /has no JetStream: start nats-server with -js/);
    return true;
  });
  const stores = new CheckpointStores({ noObjectsHint: 'pass --nats <url>' });
  await assert.rejects(stores.readCheckpoint('nats-os://bnn-checkpoints/r/step-00000001.safetensors'), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /nats-os:\/\/bnn-checkpoints\/r\/step-00000001\.safetensors: is in the NATS object store.*pass --nats <url>/);
    return true;
  });
});

test('checkpoint config - the new fields have no default (existing configs keep their hash); keepCheckpoints below 2 is refused', async () => {
  const { defaultRunConfig, parseConfigText, stableStringify } = await import('../src/config/index.js');
  const parse = (text: string) => parseConfigText(text, { source: 'test.yaml' });
  const d = defaultRunConfig();
  // the hashed text of a config that leaves them out does not mention them
  assert.ok(!/checkpointStore|checkpointReplicas|keepCheckpoints/.test(stableStringify(parse('name: x\ntrain: { epochs: 2 }\n'))));
  assert.ok(!('checkpointStore' in d) && !('checkpointReplicas' in d) && !('keepCheckpoints' in d.train));
  assert.equal(parse('name: x\ncheckpointStore: nats\ntrain: { keepCheckpoints: 2 }\n').checkpointStore, 'nats');
  assert.throws(() => parse('name: x\ntrain: { keepCheckpoints: 1 }\n'), /keepCheckpoints/);
  assert.throws(() => parse('name: x\ncheckpointStore: s3\n'), /checkpointStore/);
});
