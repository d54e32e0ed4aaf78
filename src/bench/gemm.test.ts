import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchXnorVsSgemm } from './gemm.js';
import { requireAddon } from '../native/testing.js';

test('benchXnorVsSgemm - one consistent result per shape and thread count; restores the thread setting', async () => {
  const addon = requireAddon();
  const before = addon.info().threads;
  addon.setThreads(2);
  try {
    const shapes = [
      { m: 8, k: 100, n: 24 },
      { m: 3, k: 64, n: 5 },
    ];
    const results = await benchXnorVsSgemm({ shapes, threads: [1, 3], minTimeMs: 0, minReps: 2, addon });
    assert.deepEqual(
      results.map((r) => [r.shape, r.threads]),
      [
        [shapes[0], 1],
        [shapes[0], 3],
        [shapes[1], 1],
        [shapes[1], 3],
      ],
    );
    for (const r of results) {
      for (const s of [r.sgemmSeconds, r.xnorSeconds, r.packSeconds]) assert.ok(s > 0 && Number.isFinite(s));
      const flops = 2 * r.shape.m * r.shape.k * r.shape.n;
      assert.ok(Math.abs(r.sgemmGflops - flops / r.sgemmSeconds / 1e9) < 1e-9 * r.sgemmGflops);
      assert.ok(Math.abs(r.xnorGopsEquivalent - flops / r.xnorSeconds / 1e9) < 1e-9 * r.xnorGopsEquivalent);
      assert.ok(Math.abs(r.ratio - r.sgemmSeconds / r.xnorSeconds) < 1e-12 * r.ratio);
    }
    assert.equal(addon.info().threads, 2);
  } finally {
    addon.setThreads(before);
  }
});

test('benchXnorVsSgemm - rejects empty or non-integer shapes and thread counts, naming the field', async () => {
  await assert.rejects(benchXnorVsSgemm({ shapes: [], threads: [1] }), /shapes must not be empty/);
  await assert.rejects(benchXnorVsSgemm({ shapes: [{ m: 2, k: 0, n: 2 }], threads: [1] }), /shapes\[0\]\.k must be a positive integer/);
  await assert.rejects(benchXnorVsSgemm({ shapes: [{ m: 2, k: 2, n: 2 }], threads: [1, 1.5] }), /threads\[1\] must be a positive integer/);
});
