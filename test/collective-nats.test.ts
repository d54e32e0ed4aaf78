import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AllReduce } from '../src/collective/allreduce.js';
import { CollectiveTimeoutError, TransportClosedError } from '../src/collective/errors.js';
import { connectNatsTransport, type NatsTransport } from '../src/collective/nats-transport.js';
import { encodeChunk } from '../src/collective/codec.js';
import type { AllReduceOptions } from '../src/collective/options.js';
import { firstBitDifference, randomGradient, rankOrderReduce } from '../src/collective/testing.js';
import { startTestNatsServer, type TestNatsServer } from './helpers/nats.js';

async function natsGroup(
  server: TestNatsServer,
  n: number,
  options: Partial<AllReduceOptions> = {},
  auth: { user?: string; password?: string } = {},
  generation = 1,
) {
  const transports: NatsTransport[] = [];
  for (let r = 0; r < n; r++) transports.push(await connectNatsTransport({ servers: server.url, name: `rank-${r}`, ...auth }));
  const ranks = transports.map(
    (t, rank) =>
      new AllReduce(
        t,
        { runId: 'nats', generation, rank, worldSize: n },
        { headerRoomBytes: 0, stepDeadlineMs: 5000, readyTimeoutMs: 3000, ...options },
      ),
  );
  const close = async () => {
    await Promise.all(ranks.map((r) => r.close()));
    await Promise.all(transports.map((t) => t.close()));
  };
  try {
    await Promise.all(ranks.map((r) => r.ready()));
  } catch (err) {
    await close();
    throw err;
  }
  return { transports, ranks, close };
}

test('collective nats - all-reduce equals the rank-order float32 sum bit for bit, N = 1..4, many chunks', async (t) => {
  const server = await startTestNatsServer({ t, maxPayloadBytes: 4096, user: 'bnn', password: 's3cret' });
  for (const n of [1, 2, 3, 4]) {
    const g = await natsGroup(server, n, {}, { user: 'bnn', password: 's3cret' });
    try {
      assert.equal(g.transports[0]?.maxPayload, 4096);
      assert.equal(g.ranks[0]?.chunkElementCount, 1022);
      for (const len of [1, 1023, 20_011]) {
        const inputs = Array.from({ length: n }, (_, r) => randomGradient(len, 31 * n + r + len, 1 + r));
        const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
        const expected = rankOrderReduce(inputs);
        for (const [r, res] of results.entries()) assert.equal(firstBitDifference(res, expected), -1, `N=${n} len=${len} rank ${r}`);
      }
    } finally {
      await g.close();
    }
  }
});

test('collective nats - fp16 and sign-ef give the same result on every rank', async (t) => {
  const server = await startTestNatsServer({ t, maxPayloadBytes: 4096 });
  for (const compression of ['fp16', 'sign-ef'] as const) {
    const g = await natsGroup(server, 3, { compression });
    try {
      const inputs = Array.from({ length: 3 }, (_, r) => randomGradient(30_000, 5 + r));
      const exact = rankOrderReduce(inputs);
      const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
      for (const res of results) assert.equal(firstBitDifference(res, results[0] as Float32Array), -1, compression);
      if (compression === 'fp16') {
        const res = results[0] as Float32Array;
        for (let i = 0; i < exact.length; i++) assert.ok(Math.abs((res[i] as number) - (exact[i] as number)) <= 2 ** -10 + 1e-7);
      }
      // bytes published by all ranks: fp32 would be (N−1)/N of the vector per rank (reduce-scatter)
      // plus each shard once (all-gather); sign-ef is about 1/32 of that
      const sent = g.ranks.reduce((s, r) => s + r.stats.bytesSent, 0);
      const fp32 = 30_000 * 4 * 2 + 30_000 * 4;
      if (compression === 'sign-ef') assert.ok(sent * 25 < fp32, `sign-ef sent ${sent} bytes vs ${fp32} for fp32`);
      if (compression === 'fp16') assert.ok(sent * 2 < fp32 * 1.01, `fp16 sent ${sent} bytes vs ${fp32} for fp32`);
    } finally {
      await g.close();
    }
  }
});

test('collective nats - a silent rank gives CollectiveTimeoutError naming it within the deadline; other generations are ignored', async (t) => {
  const server = await startTestNatsServer({ t, maxPayloadBytes: 4096 });
  const g = await natsGroup(server, 3, { stepDeadlineMs: 400 }, {}, 7);
  const stale = await connectNatsTransport({ servers: server.url });
  try {
    const len = 3000;
    // generation 6 (stale) and 8 (not ours) chatter on this step's subjects
    for (const gen of [6, 8]) {
      for (let s = 0; s < 3; s++)
        stale.publish(`bnn.nats.${gen}.rs.0.${s}.0`, encodeChunk('none', 2, new Float32Array(1000).fill(1e9), null));
      stale.publish(`bnn.nats.${gen}.ag.0.2.0`, encodeChunk('none', 2, new Float32Array(1000).fill(1e9), null));
    }
    await stale.flush();
    const t0 = Date.now();
    const results = await Promise.allSettled([0, 1].map((r) => (g.ranks[r] as AllReduce).allreduce(randomGradient(len, r))));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 390 && elapsed < 2000, `failed after ${elapsed} ms`);
    for (const res of results) {
      assert.equal(res.status, 'rejected');
      const err = (res as PromiseRejectedResult).reason as unknown;
      assert.ok(err instanceof CollectiveTimeoutError, String(err));
      assert.deepEqual(err.missingRanks, [2]);
      assert.ok(err.missingShards.includes(2));
    }
    // nothing from the other generations reached the group
    assert.equal(
      g.ranks.reduce((s, r) => s + r.stats.messagesDropped, 0),
      0,
    );
  } finally {
    await stale.close();
    await g.close();
  }
});

test('collective nats - connections, subscriptions and the server process are released', async () => {
  const server = await startTestNatsServer({ maxPayloadBytes: 65536 });
  let stopped = false;
  try {
    const baseline = await server.subscriptions(); // the server's own system subscriptions
    const g = await natsGroup(server, 2);
    assert.equal(await server.connections(), 2);
    assert.equal(await server.subscriptions(), baseline + 6); // hello, rs, ag per rank (fp32: reduce-scatter)
    await Promise.all(g.ranks.map((ar, r) => ar.allreduce(randomGradient(100, r))));
    await Promise.all(g.ranks.map((r) => r.close()));
    assert.deepEqual(
      g.ranks.map((r) => r.openSubscriptions),
      [0, 0],
    );
    await g.transports[0]?.flush();
    await g.transports[1]?.flush();
    assert.equal(await server.subscriptions(), baseline);
    await Promise.all(g.transports.map((tr) => tr.close()));
    assert.ok(g.transports.every((tr) => tr.isClosed));
    for (let i = 0; i < 50 && (await server.connections()) !== 0; i++) await sleep(20);
    assert.equal(await server.connections(), 0);
    const pid = server.pid;
    await server.stop();
    stopped = true;
    assert.ok(server.exited);
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
  } finally {
    if (!stopped) await server.stop();
  }
});

test('collective nats - the server dying mid-step fails every rank with TransportClosedError, not a deadline wait', async (t) => {
  const server = await startTestNatsServer({ t, maxPayloadBytes: 4096 });
  const g = await natsGroup(server, 2, { stepDeadlineMs: 10_000 });
  try {
    // rank 1 never contributes, so the step is still open when the server goes away
    const outcome = (g.ranks[0] as AllReduce).allreduce(randomGradient(10_000, 1)).then(
      () => null,
      (e: unknown) => e,
    );
    await sleep(50);
    const t0 = Date.now();
    await server.stop();
    const err = await outcome;
    assert.ok(err instanceof TransportClosedError, String(err));
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.ok(g.transports.every((tr) => tr.isClosed));
  } finally {
    await g.close();
  }
});

test('collective nats - a missing nats-server binary says how to install it', async () => {
  await assert.rejects(startTestNatsServer({ binary: '/nonexistent/nats-server' }), /apt-get install nats-server/);
});
