import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllReduce } from './allreduce.js';
import type { AllReduceOptions } from './options.js';
import { LoopbackHub } from './transport.js';
import { allreduceBucketed, gradientVector, startBucketedStep } from './gradient-buckets.js';
import { firstBitDifference, randomGradient, rankOrderReduce } from './testing.js';

async function group(n: number, options: Partial<AllReduceOptions> = {}) {
  const hub = new LoopbackHub({ maxPayload: 4096, shuffleSeed: 3 + n });
  const transports = Array.from({ length: n }, () => hub.connect());
  const ranks = transports.map(
    (t, rank) =>
      new AllReduce(
        t,
        { runId: 'gb', generation: 1, rank, worldSize: n },
        { headerRoomBytes: 0, stepDeadlineMs: 5000, readyTimeoutMs: 2000, ...options },
      ),
  );
  await Promise.all(ranks.map((r) => r.ready()));
  return {
    ranks,
    close: async () => {
      await Promise.all(ranks.map((r) => r.close()));
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

const SIZES = [3001, 17, 0, 4500, 5]; // tensors (an empty one is skipped), then 2 metrics

test('gradient buckets - a gradientVector has one bucket per non-empty tensor, one per metric, and a result buffer', () => {
  const v = gradientVector(SIZES, 2);
  assert.equal(v.data.length, 3001 + 17 + 4500 + 5 + 2);
  assert.deepEqual(v.lengths, [3001, 17, 4500, 5, 1, 1]);
  assert.deepEqual(v.offsets, [0, 3001, 3018, 7518, 7523, 7524]);
  assert.equal(v.out.length, v.data.length);
  assert.notEqual(v.out, v.data);
  assert.throws(() => gradientVector([1.5]), /non-negative integer sizes/);
});

test('gradient buckets - none: the bucketed all-reduce equals the rank-order float32 sum bit for bit, into one reused buffer', async () => {
  for (const n of [2, 3]) {
    const g = await group(n, { op: 'sum' });
    try {
      const vecs = g.ranks.map(() => gradientVector(SIZES, 2));
      let firstOut: Float32Array[] = [];
      for (let step = 0; step < 3; step++) {
        const inputs = vecs.map((v, r) => {
          v.data.set(randomGradient(v.data.length, 100 * step + r, 1 + r));
          return Float32Array.from(v.data);
        });
        const results = await Promise.all(g.ranks.map((ar, r) => allreduceBucketed(ar, vecs[r]!)));
        const expected = rankOrderReduce(inputs, 'sum');
        results.forEach((res, r) => {
          assert.equal(firstBitDifference(res, expected), -1, `N=${n} step=${step} rank=${r}`);
          assert.equal(res, vecs[r]!.out, "the vector's result buffer");
        });
        if (step === 0) firstOut = results;
        else results.forEach((res, r) => assert.equal(res, firstOut[r]));
      }
    } finally {
      await g.close();
    }
  }
});

test('gradient buckets - sign-ef: metric buckets are exact and every scale belongs to one tensor, both algorithms', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) await metricsExact(algorithm);
});

async function metricsExact(algorithm: 'reduce-scatter' | 'allgather'): Promise<void> {
  const g = await group(2, { op: 'sum', compression: 'sign-ef', algorithm });
  try {
    const sizes = [2000, 2000];
    const vecs = g.ranks.map(() => gradientVector(sizes, 2));
    // tensor 0 tiny, tensor 1 large, then (loss · samples) and correct counts
    vecs.forEach(({ data: v }, r) => {
      v.set(randomGradient(2000, 10 + r, 1e-3), 0);
      v.set(randomGradient(2000, 20 + r, 10), 2000);
      v[4000] = 2.5013 * (128 + r);
      v[4001] = 97 + r;
    });
    const results = await Promise.all(g.ranks.map((ar, r) => allreduceBucketed(ar, vecs[r]!)));
    for (const res of results) {
      assert.equal(res[4000], Math.fround(Math.fround(2.5013 * 128) + Math.fround(2.5013 * 129)));
      assert.equal(res[4001], 97 + 98);
      // decoded values of the tiny tensor stay at its own magnitude (two ±scale terms, each ≤ 1e-3)
      for (let i = 0; i < 2000; i++) assert.ok(Math.abs(res[i] as number) <= 2e-3, `element ${i}: ${res[i]}`);
      let meanAbs = 0;
      for (let i = 2000; i < 4000; i++) meanAbs += Math.abs(res[i] as number) / 2000;
      assert.ok(meanAbs > 1, `${algorithm}: the large tensor keeps its scale (mean |x| ${meanAbs})`);
    }
    assert.equal(firstBitDifference(results[0] as Float32Array, results[1] as Float32Array), -1, 'every rank ends with the same bits');
  } finally {
    await g.close();
  }
}

test('gradient buckets - one rank: the result is a copy of the input and nothing is sent', async () => {
  const g = await group(1, { compression: 'sign-ef' });
  try {
    const v = gradientVector(SIZES, 2);
    v.data.set(randomGradient(v.data.length, 5));
    const sentBefore = g.ranks[0]!.stats.messagesSent;
    const res = await allreduceBucketed(g.ranks[0]!, v);
    assert.equal(firstBitDifference(res, v.data), -1, 'uncompressed, although the group runs sign-ef');
    assert.notEqual(res, v.data);
    assert.equal(g.ranks[0]!.stats.messagesSent, sentBefore);
  } finally {
    await g.close();
  }
});

test('gradient buckets - buckets submitted one by one, in any order, give the whole-vector result', async () => {
  for (const algorithm of ['reduce-scatter', 'allgather'] as const) {
    const g = await group(2, { op: 'sum', algorithm });
    try {
      const vecs = g.ranks.map((_, r) => {
        const v = gradientVector(SIZES, 2);
        v.data.set(randomGradient(v.data.length, 40 + r));
        return v;
      });
      const whole = await Promise.all(g.ranks.map((ar, r) => allreduceBucketed(ar, vecs[r]!)));
      const expected = whole.map((w) => Float32Array.from(w));
      const steps = g.ranks.map((ar, r) => startBucketedStep(ar, vecs[r]!));
      const buckets = vecs[0]!.lengths.length;
      steps[0]!.submit(buckets - 1); // rank 0 backwards, rank 1 only some: finish() sends the rest
      for (let b = buckets - 2; b >= 0; b--) steps[0]!.submit(b);
      steps[1]!.submit(1);
      steps[1]!.submit(1); // twice: ignored
      const results = await Promise.all(steps.map((st) => st.finish()));
      for (const [r, res] of results.entries()) assert.equal(firstBitDifference(res, expected[r]!), -1, `${algorithm} rank ${r}`);
      assert.equal(
        firstBitDifference(
          expected[0]!,
          rankOrderReduce(
            vecs.map((v) => v.data),
            'sum',
          ),
        ),
        -1,
      );
      assert.throws(() => steps[0]!.submit(buckets), /bucket \d+: the vector has buckets/);
    } finally {
      await g.close();
    }
  }
});
