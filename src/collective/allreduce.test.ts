import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveAlgorithm } from './options.js';
import { AllReduce } from './allreduce.js';
import {
  CollectiveFailedError,
  CollectiveTimeoutError,
  CollectiveConfigError,
  NonFiniteContributionError,
  TransportClosedError,
} from './errors.js';
import { missingRanksOf } from './elastic-group.js';
import type { AllReduceOptions } from './options.js';
import { LoopbackHub, type LoopbackTransport } from './transport.js';
import { firstBitDifference, randomGradient, rankOrderReduce } from './testing.js';
import { encodeChunk } from './codec.js';

async function loopbackGroup(
  n: number,
  options: Partial<AllReduceOptions> = {},
  hubOptions: { maxPayload?: number; shuffleSeed?: number } = {},
  generation = 1,
) {
  const hub = new LoopbackHub({ maxPayload: 4096, ...hubOptions });
  const transports = Array.from({ length: n }, () => hub.connect());
  const ranks = transports.map(
    (t, rank) =>
      new AllReduce(
        t,
        { runId: 'r1', generation, rank, worldSize: n },
        { headerRoomBytes: 0, stepDeadlineMs: 5000, readyTimeoutMs: 2000, ...options },
      ),
  );
  await Promise.all(ranks.map((r) => r.ready()));
  const close = async () => {
    await Promise.all(ranks.map((r) => r.close()));
    await Promise.all(transports.map((t) => t.close()));
    assert.equal(hub.subscriptionCount, 0);
  };
  return { hub, transports, ranks, close };
}

test('allreduce loopback - mean and sum equal the rank-order float32 sum bit for bit, any arrival order, both algorithms', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const)
    for (const n of [1, 2, 3, 4]) {
      for (const seed of [1, 2, 3]) {
        const g = await loopbackGroup(n, { algorithm }, { shuffleSeed: seed * 97 + n });
        assert.equal(g.ranks[0]!.algorithm, algorithm);
        try {
          const len = 5003; // not a multiple of the 1022-element chunk, nor of N
          for (let step = 0; step < 2; step++) {
            const inputs = Array.from({ length: n }, (_, r) => randomGradient(len, 1000 * seed + 10 * r + step, 1 + r));
            const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
            const expected = rankOrderReduce(inputs, 'mean');
            for (const res of results) assert.equal(firstBitDifference(res, expected), -1, `${algorithm} N=${n} seed=${seed} step=${step}`);
          }
        } finally {
          await g.close();
        }
      }
    }
  const g = await loopbackGroup(3, { op: 'sum' }, { shuffleSeed: 5 });
  try {
    const inputs = [0, 1, 2].map((r) => randomGradient(777, 50 + r));
    const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
    for (const res of results) assert.equal(firstBitDifference(res, rankOrderReduce(inputs, 'sum')), -1);
  } finally {
    await g.close();
  }
});

test('allreduce loopback - buckets reduce concurrently and equal one whole-vector call', async () => {
  const n = 3;
  const lengths = [1000, 1, 2500, 0, 3333];
  const total = lengths.reduce((a, b) => a + b, 0);
  const inputs = Array.from({ length: n }, (_, r) => randomGradient(total, 77 + r));
  const g = await loopbackGroup(n, {}, { shuffleSeed: 11 });
  try {
    const whole = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
    let lastBucketsSubmitted = 0;
    const doneBeforeLastSubmit: boolean[] = [];
    const offsets: number[] = [];
    lengths.reduce((o, l) => {
      offsets.push(o);
      return o + l;
    }, 0);
    const bucketed = await Promise.all(
      g.ranks.map(async (ar, r) => {
        const step = ar.allreduceBuckets(lengths);
        const input = inputs[r] as Float32Array;
        const pending: Array<Promise<Float32Array>> = [];
        // submit the last bucket first (as backprop produces them), pausing between submissions
        for (let b = lengths.length - 1; b >= 0; b--) {
          const o = offsets[b] as number;
          pending[b] = step.reduce(b, input.subarray(o, o + (lengths[b] as number)));
          if (b === lengths.length - 1)
            void pending[b]?.then(() => {
              doneBeforeLastSubmit[r] = lastBucketsSubmitted < n;
            });
          if (b === 0) lastBucketsSubmitted++;
          await new Promise((res) => setTimeout(res, 10));
        }
        const parts = await Promise.all(pending);
        const full = await step.done();
        parts.forEach((p, b) =>
          assert.equal(firstBitDifference(p, full.subarray(offsets[b], (offsets[b] as number) + (lengths[b] as number))), -1),
        );
        return full;
      }),
    );
    // the first-submitted bucket was reduced on every rank before the last bucket was even submitted
    assert.deepEqual(doneBeforeLastSubmit, [true, true, true]);
    const expected = rankOrderReduce(inputs);
    for (let r = 0; r < n; r++) {
      assert.equal(firstBitDifference(bucketed[r] as Float32Array, expected), -1);
      assert.equal(firstBitDifference(bucketed[r] as Float32Array, whole[r] as Float32Array), -1);
    }
  } finally {
    await g.close();
  }
});

test('allreduce loopback - fp16 result is within half precision of the mean, identical on every rank', async () => {
  const n = 4;
  const g = await loopbackGroup(n, { compression: 'fp16' }, { shuffleSeed: 3 });
  try {
    const inputs = Array.from({ length: n }, (_, r) => randomGradient(3001, 300 + r));
    const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
    const exact = rankOrderReduce(inputs);
    for (const res of results) {
      assert.equal(firstBitDifference(res, results[0] as Float32Array), -1);
      for (let i = 0; i < exact.length; i++) {
        // two half roundings (contribution, result), each ≤ 2^-11 relative to values ≤ 1
        assert.ok(Math.abs((res[i] as number) - (exact[i] as number)) <= 2 * 2 ** -11 + 1e-7, `i=${i}: ${res[i]} vs ${exact[i]}`);
      }
    }
  } finally {
    await g.close();
  }
});

test('allreduce loopback - sign-ef: error feedback makes the running average converge to the true mean, both algorithms', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) await signEfConverges(algorithm);
});

async function signEfConverges(algorithm: 'reduce-scatter' | 'allgather'): Promise<void> {
  const n = 3;
  const len = 2000;
  const g = await loopbackGroup(n, { compression: 'sign-ef', maxMessageBytes: 8 + 4 + 64, algorithm }, { shuffleSeed: 9 }); // 512-element chunks
  try {
    const inputs = Array.from({ length: n }, (_, r) => randomGradient(len, 900 + r));
    const truth = rankOrderReduce(inputs);
    const sum = new Float64Array(len);
    const errAt = (steps: number) => {
      let e = 0;
      for (let i = 0; i < len; i++) e += Math.abs((sum[i] as number) / steps - (truth[i] as number));
      return e / len;
    };
    let firstErr = 0;
    const steps = 200;
    for (let t = 1; t <= steps; t++) {
      const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
      for (const res of results) assert.equal(firstBitDifference(res, results[0] as Float32Array), -1);
      const res = results[0] as Float32Array;
      for (let i = 0; i < len; i++) sum[i] = (sum[i] as number) + (res[i] as number);
      if (t === 1) firstErr = errAt(1);
    }
    const lastErr = errAt(steps);
    // without error feedback every step would decode the same values, so the average would keep
    // the first step's error; with it, Σ decoded = T·mean − residuals, and the error shrinks
    assert.ok(firstErr > 0.1, `${algorithm}: first-step mean error ${firstErr}`);
    assert.ok(lastErr < firstErr / 20, `${algorithm}: mean error after ${steps} steps ${lastErr} vs first ${firstErr}`);
  } finally {
    await g.close();
  }
}

test('allreduce loopback - a rank that never contributes gives CollectiveTimeoutError naming it', async () => {
  const g = await loopbackGroup(3, { stepDeadlineMs: 300 });
  try {
    const t0 = Date.now();
    const results = await Promise.allSettled([0, 1].map((r) => (g.ranks[r] as AllReduce).allreduce(randomGradient(3000, r))));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    for (const [r, res] of results.entries()) {
      assert.equal(res.status, 'rejected');
      const err = (res as PromiseRejectedResult).reason;
      assert.ok(err instanceof CollectiveTimeoutError, String(err));
      assert.ok(err instanceof CollectiveFailedError);
      assert.deepEqual(err.missingRanks, [2], `rank ${r}`);
      // no owner could finish: each rank lacks the other ranks' shards
      assert.deepEqual(err.missingShards, r === 0 ? [1, 2] : [0, 2], `rank ${r}`);
      assert.match(err.message, /rank\(s\) 2/);
    }
    // the instance is unusable afterwards
    assert.throws(() => (g.ranks[0] as AllReduce).allreduceBuckets([1]), CollectiveTimeoutError);
  } finally {
    await g.close();
  }
});

test('allreduce loopback - a contribution with NaN or Inf fails the step naming its sender, every codec and algorithm', async () => {
  for (const compression of ['none', 'fp16', 'sign-ef'] as const)
    for (const algorithm of ['reduce-scatter', 'allgather'] as const)
      for (const special of [Number.NaN, Infinity]) {
        const g = await loopbackGroup(3, { compression, algorithm, stepDeadlineMs: 300 }, { shuffleSeed: 3 });
        const what = `${compression} ${algorithm} ${special}`;
        try {
          const inputs = [0, 1, 2].map((r) => randomGradient(3000, 20 + r));
          (inputs[1] as Float32Array)[100] = special; // in shard 0 (reduce-scatter): rank 0 sums it
          const results = await Promise.allSettled(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
          assert.ok(
            results.every((res) => res.status === 'rejected'),
            `${what}: no rank may finish the step`,
          );
          const errors = results.map((res) => (res as PromiseRejectedResult).reason as Error);
          // the ranks that summed the chunk name rank 1; the others time out waiting for them
          const named = errors.filter((e) => e instanceof NonFiniteContributionError);
          assert.ok(named.length >= 1, `${what}: ${errors.map(String).join('; ')}`);
          for (const e of named) {
            assert.equal((e as NonFiniteContributionError).rank, 1, what);
            assert.ok(e instanceof CollectiveFailedError);
            assert.deepEqual(missingRanksOf(e as NonFiniteContributionError), [1], what);
            assert.match(e.message, /rank 1 sent NaN or Inf values/);
          }
          if (algorithm === 'reduce-scatter') assert.ok(errors[0] instanceof NonFiniteContributionError, `${what}: the owner of shard 0`);
        } finally {
          await g.close();
        }
      }
});

test("allreduce loopback - a sum that overflows to Inf is no rank's fault: every rank gets the same result", async () => {
  const g = await loopbackGroup(2, { op: 'sum' });
  try {
    const inputs = [0, 1].map((r) => randomGradient(500, 40 + r));
    for (const v of inputs) v[7] = 3e38;
    const results = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
    for (const res of results) {
      assert.equal(res[7], Infinity);
      assert.equal(firstBitDifference(res, rankOrderReduce(inputs, 'sum')), -1);
    }
  } finally {
    await g.close();
  }
});

test('allreduce loopback - ready() times out naming ranks that never joined', async () => {
  const hub = new LoopbackHub();
  const t = hub.connect();
  const ar = new AllReduce(t, { runId: 'r', generation: 0, rank: 1, worldSize: 3 }, { readyTimeoutMs: 200 });
  try {
    await assert.rejects(ar.ready(), (err: unknown) => err instanceof CollectiveTimeoutError && err.missingRanks.join() === '0,2');
  } finally {
    await ar.close();
    await t.close();
  }
  assert.equal(hub.subscriptionCount, 0);
});

test('allreduce loopback - stale generations and stale steps are ignored, both algorithms', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) await staleIgnored(algorithm);
});

async function staleIgnored(algorithm: 'reduce-scatter' | 'allgather'): Promise<void> {
  const n = 2;
  const g = await loopbackGroup(n, { algorithm }, {}, 5);
  const intruder = g.hub.connect();
  try {
    const len = 100;
    const inputs = [randomGradient(len, 1), randomGradient(len, 2)];
    const garbage = encodeChunk('none', 1, new Float32Array(len / 2).fill(1e6), null);
    // the previous generation still talking on its own subjects, for the step the group is about to run
    for (const gen of [4, 6]) {
      intruder.publish(`bnn.r1.${gen}.rs.0.0.0`, garbage);
      intruder.publish(`bnn.r1.${gen}.ag.0.1.0`, encodeChunk('none', 1, new Float32Array(len / 2).fill(1e6), null));
      intruder.publish(`bnn.r1.${gen}.ga.0.1.0`, encodeChunk('none', 1, new Float32Array(len).fill(1e6), null));
    }
    await intruder.flush();
    const r0 = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[r] as Float32Array)));
    for (const res of r0) assert.equal(firstBitDifference(res, rankOrderReduce(inputs)), -1);
    // a late duplicate of step 0 arriving during step 1 is dropped
    const dropped = (g.ranks[0] as AllReduce).stats.messagesDropped;
    if (algorithm === 'allgather') intruder.publish('bnn.r1.5.ga.0.1.0', encodeChunk('none', 1, new Float32Array(len).fill(1e6), null));
    else intruder.publish('bnn.r1.5.rs.0.0.0', garbage);
    await intruder.flush();
    const r1 = await Promise.all(g.ranks.map((ar, r) => ar.allreduce(inputs[1 - r] as Float32Array)));
    for (const res of r1)
      assert.equal(firstBitDifference(res, rankOrderReduce([inputs[1] as Float32Array, inputs[0] as Float32Array])), -1);
    assert.equal((g.ranks[0] as AllReduce).stats.messagesDropped, dropped + 1);
  } finally {
    await intruder.close();
    await g.close();
  }
}

test('allreduce - invalid group and options are named before any I/O', () => {
  const hub = new LoopbackHub();
  const t = hub.connect();
  assert.throws(
    () => new AllReduce(t, { runId: 'a.b', generation: 0, rank: 0, worldSize: 1 }),
    (e: unknown) => e instanceof CollectiveConfigError && /runId/.test(e.message),
  );
  assert.throws(() => new AllReduce(t, { runId: 'a', generation: 0, rank: 2, worldSize: 2 }), /rank: expected 0\.\.1/);
  assert.throws(
    () => new AllReduce(t, { runId: 'a', generation: 0, rank: 0, worldSize: 1 }, { compression: 'int4' as never }),
    /compression: expected one of none, fp16, sign-ef/,
  );
  assert.equal(hub.subscriptionCount, 0);
});

test('allreduce loopback - ranks with different compression fail ready() naming both settings', async () => {
  const hub = new LoopbackHub();
  const ts = [hub.connect(), hub.connect()];
  const a = new AllReduce(ts[0] as LoopbackTransport, { runId: 'm', generation: 0, rank: 0, worldSize: 2 }, { readyTimeoutMs: 2000 });
  const b = new AllReduce(
    ts[1] as LoopbackTransport,
    { runId: 'm', generation: 0, rank: 1, worldSize: 2 },
    { compression: 'fp16', readyTimeoutMs: 2000 },
  );
  try {
    const [ra, rb] = await Promise.allSettled([a.ready(), b.ready()]);
    for (const r of [ra, rb]) {
      assert.equal(r?.status, 'rejected');
      assert.ok((r as PromiseRejectedResult).reason instanceof CollectiveConfigError);
      assert.match(String((r as PromiseRejectedResult).reason), /compression 'fp16'.*'none'|compression 'none'.*'fp16'/);
    }
  } finally {
    await Promise.all([a.close(), b.close(), ...ts.map((t) => t.close())]);
  }
});

test('allreduce loopback - ranks with different algorithms fail ready() naming both', async () => {
  const hub = new LoopbackHub();
  const ts = [hub.connect(), hub.connect()];
  const a = new AllReduce(
    ts[0] as LoopbackTransport,
    { runId: 'm', generation: 0, rank: 0, worldSize: 2 },
    { compression: 'sign-ef', readyTimeoutMs: 2000 },
  );
  const b = new AllReduce(
    ts[1] as LoopbackTransport,
    { runId: 'm', generation: 0, rank: 1, worldSize: 2 },
    { compression: 'sign-ef', algorithm: 'reduce-scatter', readyTimeoutMs: 2000 },
  );
  try {
    assert.equal(a.algorithm, 'allgather', 'auto is allgather for two ranks with compression');
    for (const [n, compression, want] of [
      [2, 'none', 'reduce-scatter'],
      [2, 'fp16', 'allgather'],
      [3, 'sign-ef', 'reduce-scatter'],
      [1, 'sign-ef', 'allgather'],
    ] as const) {
      assert.equal(resolveAlgorithm('auto', n, compression), want, `auto for N=${n} ${compression}`);
    }
    const [ra, rb] = await Promise.allSettled([a.ready(), b.ready()]);
    for (const r of [ra, rb]) {
      assert.equal(r?.status, 'rejected');
      assert.match(
        String((r as PromiseRejectedResult).reason),
        /algorithm 'allgather'.*'reduce-scatter'|algorithm 'reduce-scatter'.*'allgather'/,
      );
    }
  } finally {
    await Promise.all([a.close(), b.close(), ...ts.map((t) => t.close())]);
  }
  assert.throws(
    () => new AllReduce(hub.connect(), { runId: 'm', generation: 0, rank: 0, worldSize: 1 }, { algorithm: 'ring' as never }),
    /algorithm: expected one of auto, reduce-scatter, allgather/,
  );
});

test('allreduce loopback - a transport closed mid-step fails that rank at once with TransportClosedError', async () => {
  const g = await loopbackGroup(2, { stepDeadlineMs: 2000 });
  try {
    const p0 = (g.ranks[0] as AllReduce).allreduce(randomGradient(5000, 1));
    await g.transports[0]?.close();
    const t0 = Date.now();
    await assert.rejects(p0, (e: unknown) => e instanceof TransportClosedError && e instanceof CollectiveFailedError);
    assert.ok(Date.now() - t0 < 500);
  } finally {
    await g.close();
  }
});

test('allreduce loopback - sign-ef residuals restored into a new group continue bit-identically, both algorithms', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) {
    const n = 2;
    const len = 3001;
    const inputs = (step: number) => Array.from({ length: n }, (_, r) => randomGradient(len, 70 + 10 * step + r));
    const a = await loopbackGroup(n, { compression: 'sign-ef', algorithm, maxMessageBytes: 8 + 4 * 4 + 128 }, { shuffleSeed: 3 });
    const b = await loopbackGroup(n, { compression: 'sign-ef', algorithm, maxMessageBytes: 8 + 4 * 4 + 128 }, { shuffleSeed: 4 }, 2);
    try {
      assert.equal(a.ranks[0]!.errorFeedback(), null, 'no state before the first step');
      await Promise.all(a.ranks.map((ar, r) => ar.allreduce(inputs(0)[r]!)));
      const saved = a.ranks.map((ar) => {
        const ef = ar.errorFeedback()!;
        return { worker: Float32Array.from(ef.worker), owner: ef.owner ? Float32Array.from(ef.owner) : null };
      });
      assert.equal(saved[0]!.owner === null, algorithm === 'allgather', 'an owner residual exactly with reduce-scatter');
      b.ranks.forEach((ar, r) => ar.restoreErrorFeedback(saved[r]!.worker, saved[r]!.owner));
      for (const step of [1, 2]) {
        const ra = await Promise.all(a.ranks.map((ar, r) => ar.allreduce(inputs(step)[r]!)));
        const rb = await Promise.all(b.ranks.map((ar, r) => ar.allreduce(inputs(step)[r]!)));
        for (let r = 0; r < n; r++) assert.equal(firstBitDifference(rb[r]!, ra[r]!), -1, `${algorithm} step ${step} rank ${r}`);
      }
    } finally {
      await a.close();
      await b.close();
    }
  }
  const plain = await loopbackGroup(1, {});
  try {
    assert.throws(() => plain.ranks[0]!.restoreErrorFeedback(new Float32Array(4), null), /the group runs 'none', not sign-ef/);
  } finally {
    await plain.close();
  }
});
