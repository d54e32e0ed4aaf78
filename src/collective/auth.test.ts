import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllReduce } from './allreduce.js';
import { MAC_BYTES, newRunKey, RunAuth, RUN_KEY_BYTES, type GroupMac } from './auth.js';
import { encodeChunk, HEADER_BYTES } from './codec.js';
import { CollectiveConfigError, CollectiveTimeoutError, NonFiniteContributionError } from './errors.js';
import type { AllReduceOptions } from './options.js';
import { LoopbackHub, type TransportMessage } from './transport.js';
import { firstBitDifference, randomGradient, rankOrderReduce } from './testing.js';

/** A sealed `none` chunk of `values` from `rank` on `subject`. */
function sealed(mac: GroupMac, step: number | null, subject: string, rank: number, values: Float32Array): Uint8Array {
  const msg = encodeChunk('none', rank, values, null, undefined, MAC_BYTES);
  mac.seal(step, subject, msg);
  return msg;
}

test('auth - a sealed message opens to its payload; one flipped bit anywhere, or another key, is rejected', () => {
  const auth = new RunAuth(newRunKey());
  const mac = auth.forGroup('r1', 3);
  const subject = 'bnn.r1.3.rs.7.1.0';
  const msg = sealed(mac, 7, subject, 0, randomGradient(33, 1));
  const payload = mac.open(7, subject, msg);
  assert.ok(payload);
  assert.equal(payload.byteLength, msg.byteLength - MAC_BYTES);
  assert.deepEqual(payload, msg.subarray(0, msg.byteLength - MAC_BYTES));
  // payload, nonce and tag bytes: each flip is caught
  for (const at of [0, 2, HEADER_BYTES + 5, msg.byteLength - MAC_BYTES - 1, msg.byteLength - MAC_BYTES, msg.byteLength - 1]) {
    const bad = Uint8Array.from(msg);
    bad[at]! ^= 1;
    assert.equal(mac.open(7, subject, bad), null, `bit flipped at byte ${at}`);
  }
  assert.equal(mac.open(7, subject, msg.subarray(0, MAC_BYTES - 1)), null, 'shorter than a MAC');
  const stranger = new RunAuth(newRunKey()).forGroup('r1', 3);
  assert.equal(stranger.open(7, subject, msg), null, 'a process with another secret');
  assert.equal(auth.takeRejections().count, 7);
});

test('auth - a genuine message replayed on another step, generation, group, chunk or as another sender is rejected', () => {
  const auth = new RunAuth(newRunKey());
  const mac = auth.forGroup('r1', 3);
  const values = randomGradient(16, 2);
  const msg = sealed(mac, 7, 'bnn.r1.3.rs.7.1.0', 0, values);
  assert.ok(mac.open(7, 'bnn.r1.3.rs.7.1.0', msg));
  const replays: Array<[GroupMac, number | null, string]> = [
    [mac, 8, 'bnn.r1.3.rs.8.1.0'], // the next step
    [mac, 7, 'bnn.r1.3.rs.8.1.0'], // the next step's subject, this step's key
    [mac, 8, 'bnn.r1.3.rs.7.1.0'], // this subject under the next step's key
    [auth.forGroup('r1', 4), 7, 'bnn.r1.4.rs.7.1.0'], // the next generation
    [auth.forGroup('r1-sync0', 3), 7, 'bnn.r1-sync0.3.rs.7.1.0'], // the sync group
    [mac, 7, 'bnn.r1.3.rs.7.1.1'], // another chunk
    [mac, 7, 'bnn.r1.3.ag.7.1.0'], // another phase
    [mac, null, 'bnn.r1.3.hello'], // as a hello
  ];
  for (const [m, step, subject] of replays) assert.equal(m.open(step, subject, msg), null, `${subject} (key of step ${step})`);
  // the sender rank is in the header the MAC covers: rank 1's chunk is not rank 0's
  const asRank1 = Uint8Array.from(msg);
  asRank1[2] = 1;
  assert.equal(mac.open(7, 'bnn.r1.3.rs.7.1.0', asRank1), null);
  // the same message, the same subject: genuine (a duplicate, which the all-reduce drops as such)
  assert.ok(mac.open(7, 'bnn.r1.3.rs.7.1.0', msg));
});

test('auth - rejections name the first subjects of each step, then only count; taking them resets the log', () => {
  const auth = new RunAuth(newRunKey());
  const mac = auth.forGroup('r1', 1);
  const junk = new Uint8Array(64);
  for (let step = 0; step < 2; step++) for (let c = 0; c < 5; c++) mac.open(step, `bnn.r1.1.rs.${step}.0.${c}`, junk);
  mac.open(null, 'bnn.r1.1.hello', junk);
  const r = auth.takeRejections();
  assert.equal(r.count, 11);
  assert.deepEqual(r.subjects, [
    'bnn.r1.1.rs.0.0.0',
    'bnn.r1.1.rs.0.0.1',
    'bnn.r1.1.rs.0.0.2',
    'bnn.r1.1.rs.1.0.0',
    'bnn.r1.1.rs.1.0.1',
    'bnn.r1.1.rs.1.0.2',
    'bnn.r1.1.hello',
  ]);
  assert.deepEqual(auth.takeRejections(), { count: 0, subjects: [] });
  for (let step = 0; step < 10; step++) mac.open(step, `bnn.r1.1.rs.${step}.0.0`, junk);
  assert.equal(auth.takeRejections().subjects.length, 10);
  for (let step = 0; step < 20; step++) mac.open(step, `bnn.r1.1.rs.${step}.0.0`, junk);
  assert.equal(auth.takeRejections().subjects.length, 12, 'a dozen subjects per report at most');
});

test('auth - a run key must be 32 bytes; nonces differ between two seals of the same message', () => {
  assert.throws(
    () => new RunAuth(new Uint8Array(0)),
    (e: unknown) => e instanceof CollectiveConfigError && /run key: expected 32 bytes, got 0/.test(e.message),
  );
  assert.throws(() => new RunAuth(new Uint8Array(16)), /expected 32 bytes, got 16/);
  const key = newRunKey();
  assert.equal(key.byteLength, RUN_KEY_BYTES);
  assert.ok(new RunAuth(key).holds(Uint8Array.from(key)));
  assert.ok(!new RunAuth(key).holds(newRunKey()));
  const mac = new RunAuth(key).forGroup('r', 0);
  const a = sealed(mac, 0, 'bnn.r.0.ga.0.0.0', 0, new Float32Array(4));
  const b = sealed(mac, 0, 'bnn.r.0.ga.0.0.0', 0, new Float32Array(4));
  assert.notDeepEqual(a.subarray(-MAC_BYTES), b.subarray(-MAC_BYTES));
});

/** Two ranks over a loopback hub (any arrival order), with `keys[r]` (null: unauthenticated), and a third connection that records everything. */
async function forgedGroup(keys: Array<Uint8Array | null>, options: Partial<AllReduceOptions>) {
  const hub = new LoopbackHub({ maxPayload: 4096, shuffleSeed: 11 });
  const auths = keys.map((k) => (k ? new RunAuth(k) : null));
  const transports = keys.map(() => hub.connect());
  const ranks = transports.map(
    (t, rank) =>
      new AllReduce(
        t,
        { runId: 'r1', generation: 2, rank, worldSize: keys.length },
        { headerRoomBytes: 0, stepDeadlineMs: 3000, readyTimeoutMs: 1000, ...options },
        auths[rank] ?? null,
      ),
  );
  const forger = hub.connect();
  const seen: TransportMessage[] = [];
  const sub = forger.subscribe('bnn.>');
  const recording = (async () => {
    for await (const m of sub) seen.push(m);
  })();
  const close = async () => {
    await Promise.all(ranks.map((r) => r.close()));
    sub.stop();
    await recording;
    await Promise.all([...transports, forger].map((t) => t.close()));
    assert.equal(hub.subscriptionCount, 0);
  };
  return { hub, auths, ranks, forger, seen, close };
}

/** Step `from`'s chunk messages moved to step `to`: replayed as they are, their fp32 body set to NaN, and to 1e6 (finite). */
function forgeries(seen: readonly TransportMessage[], from: number, to: number): TransportMessage[] {
  const out: TransportMessage[] = [];
  for (const m of seen) {
    const t = m.subject.split('.');
    if (t.length !== 7 || t[4] !== String(from)) continue;
    t[4] = String(to);
    const subject = t.join('.');
    out.push({ subject, data: m.data });
    for (const v of [Number.NaN, 1e6]) {
      // the header's element count of fp32 values; a MAC after them stays as it was
      const data = Uint8Array.from(m.data);
      new Float32Array(data.buffer, HEADER_BYTES, new DataView(data.buffer).getUint32(4, true)).fill(v);
      out.push({ subject, data });
    }
  }
  return out;
}

test('allreduce auth - forged NaN and finite chunks and replays of step 0 on step 1 are rejected and counted; the result stays exact', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) {
    const key = newRunKey();
    const f = await forgedGroup([key, key], { algorithm });
    try {
      await Promise.all(f.ranks.map((r) => r.ready()));
      const inputs = [0, 1].map((s) => [randomGradient(1500, 10 + s), randomGradient(1500, 20 + s)]);
      const r0 = await Promise.all(f.ranks.map((ar, r) => ar.allreduce(inputs[0]![r]!)));
      for (const res of r0) assert.equal(firstBitDifference(res, rankOrderReduce(inputs[0]!)), -1);
      await f.hub.settle();
      const forged = forgeries(f.seen, 0, 1);
      assert.ok(forged.length >= 6, `${forged.length} forgeries`);
      // ahead of the step (they would be buffered and taken first) ...
      for (const m of forged) f.forger.publish(m.subject, m.data);
      await f.hub.settle();
      // ... and while it runs
      const step1 = Promise.all(f.ranks.map((ar, r) => ar.allreduce(inputs[1]![r]!)));
      for (const m of forged) f.forger.publish(m.subject, m.data);
      const r1 = await step1;
      for (const res of r1) assert.equal(firstBitDifference(res, rankOrderReduce(inputs[1]!)), -1, algorithm);
      await f.hub.settle();
      const rejected = f.ranks.reduce((n, ar) => n + ar.stats.messagesRejected, 0);
      const logged = f.auths.reduce((n, a) => n + a!.takeRejections().count, 0);
      assert.equal(rejected, logged);
      // every forgery reached a rank whose subscription matches it, twice (ahead and during)
      assert.ok(rejected >= forged.length, `${rejected} rejected of ${2 * forged.length} published`);
    } finally {
      await f.close();
    }
  }
});

test('allreduce auth - the same forgeries against unauthenticated ranks fail the step (NaN) or corrupt the sum unseen (finite): what the MAC prevents', async () => {
  // forgeries() yields [replay, NaN body, 1e6 body] per genuine message
  for (const kind of ['nan', 'finite'] as const) {
    const f = await forgedGroup([null, null], { algorithm: 'reduce-scatter' });
    try {
      await Promise.all(f.ranks.map((r) => r.ready()));
      const inputs = [randomGradient(1500, 1), randomGradient(1500, 2)];
      await Promise.all(f.ranks.map((ar, r) => ar.allreduce(inputs[r]!)));
      await f.hub.settle();
      const pick = kind === 'nan' ? 1 : 2;
      for (const m of forgeries(f.seen, 0, 1).filter((_, i) => i % 3 === pick)) f.forger.publish(m.subject, m.data);
      await f.hub.settle();
      const results = await Promise.allSettled(f.ranks.map((ar, r) => ar.allreduce(inputs[r]!)));
      if (kind === 'nan') {
        // the non-finite guard stops the NaN, but blames a member for what a stranger sent
        assert.ok(
          results.some((r) => r.status === 'rejected' && r.reason instanceof NonFiniteContributionError),
          'a forged NaN chunk buffered ahead of its step fails it',
        );
      } else {
        const expected = rankOrderReduce(inputs);
        assert.ok(
          results.some((r) => r.status === 'fulfilled' && firstBitDifference(r.value, expected) !== -1),
          'a forged finite chunk buffered ahead of its step is summed in',
        );
      }
    } finally {
      await f.close();
    }
  }
});

test('allreduce auth - a rank with another run key never passes the ready barrier; its hellos are rejected and named', async () => {
  const f = await forgedGroup([newRunKey(), newRunKey()], { readyTimeoutMs: 600 });
  try {
    const results = await Promise.allSettled(f.ranks.map((r) => r.ready()));
    for (const r of results) assert.ok(r.status === 'rejected' && r.reason instanceof CollectiveTimeoutError);
    const rejected = f.auths[0]!.takeRejections();
    assert.ok(rejected.count >= 1);
    assert.ok(rejected.subjects.length >= 1 && rejected.subjects.every((s) => s === 'bnn.r1.2.hello'), rejected.subjects.join());
  } finally {
    await f.close();
  }
});
