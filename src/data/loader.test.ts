import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataOptionError } from './errors.js';
import { BatchCursor, epochPermutation, shardIndices, type Batch } from './loader.js';

const isPermutation = (p: Uint32Array, n: number): boolean => p.length === n && [...p].sort((a, b) => a - b).every((v, i) => v === i);

test('loader - epochPermutation is deterministic per (seed, epoch) and differs across epochs', () => {
  const p = epochPermutation(1000, 7, 3);
  assert.ok(isPermutation(p, 1000));
  assert.deepEqual(epochPermutation(1000, 7, 3), p);
  assert.notDeepEqual(epochPermutation(1000, 7, 4), p);
  assert.notDeepEqual(epochPermutation(1000, 8, 3), p);
  assert.equal(epochPermutation(0, 7, 0).length, 0);
});

test('loader - each epoch visits every sample once, with a partial last batch unless dropLast', () => {
  const cursor = new BatchCursor({ n: 10, batchSize: 4, seed: 1 });
  assert.equal(cursor.stepsPerEpoch, 3);
  const epoch0 = [...cursor.remainingInEpoch()];
  assert.deepEqual(
    epoch0.map((b) => [b.epoch, b.step, b.indices.length]),
    [
      [0, 0, 4],
      [0, 1, 4],
      [0, 2, 2],
    ],
  );
  const all = new Uint32Array(epoch0.flatMap((b) => [...b.indices]));
  assert.deepEqual(all, epochPermutation(10, 1, 0));
  assert.deepEqual(cursor.getState(), { epoch: 1, step: 0 });
  assert.deepEqual(cursor.next().indices, epochPermutation(10, 1, 1).slice(0, 4));

  const dropping = new BatchCursor({ n: 10, batchSize: 4, seed: 1, dropLast: true });
  assert.deepEqual(
    [...dropping.remainingInEpoch()].map((b) => b.indices.length),
    [4, 4],
  );
  assert.throws(() => new BatchCursor({ n: 3, batchSize: 4, seed: 1, dropLast: true }), DataOptionError);
});

test('loader - a cursor restored from saved state continues with identical batches', () => {
  const opts = { n: 103, batchSize: 8, seed: 99 };
  const straight = new BatchCursor(opts);
  const expected: Batch[] = Array.from({ length: 40 }, () => straight.next());
  const first = new BatchCursor(opts);
  for (let i = 0; i < 17; i++) first.next(); // stop mid-epoch 1 (13 steps per epoch)
  const saved = JSON.stringify(first.getState());
  assert.deepEqual(JSON.parse(saved), { epoch: 1, step: 4 });
  const resumed = new BatchCursor(opts, JSON.parse(saved));
  for (let i = 17; i < 40; i++) assert.deepEqual(resumed.next(), expected[i]);
});

test('loader - an out-of-range cursor state is refused with the valid range', () => {
  assert.throws(
    () => new BatchCursor({ n: 10, batchSize: 4, seed: 0 }, { epoch: 0, step: 3 }),
    /cursor\.step 3 is past the end of an epoch \(steps 0\.\.2/,
  );
  assert.throws(() => new BatchCursor({ n: 10, batchSize: 4, seed: 0 }, { epoch: -1, step: 0 }), /cursor\.epoch must be an integer ≥ 0/);
  assert.throws(() => new BatchCursor({ n: 10, batchSize: 0, seed: 0 }), /batchSize must be an integer ≥ 1, got 0/);
});

test('loader - shards are contiguous, cover the batch and differ in size by at most 1', () => {
  for (const size of [0, 1, 2, 3, 7, 16, 17, 63]) {
    const batch = Uint32Array.from({ length: size }, (_, i) => 1000 + i);
    for (const world of [1, 2, 3, 4, 8]) {
      const shards = Array.from({ length: world }, (_, r) => shardIndices(batch, r, world));
      const sizes = shards.map((s) => s.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `B=${size} W=${world}: ${sizes}`);
      assert.deepEqual(new Uint32Array(shards.flatMap((s) => [...s])), batch);
      for (let r = 1; r < world; r++) assert.ok(sizes[r]! <= sizes[r - 1]!, 'larger shards first');
    }
  }
  assert.deepEqual([...shardIndices(Uint32Array.from([5, 6, 7, 8, 9]), 1, 2)], [8, 9]);
  assert.throws(() => shardIndices(new Uint32Array(4), 2, 2), /rank must be an integer in 0\.\.1, got 2/);
  assert.throws(() => shardIndices(new Uint32Array(4), 0, 0), /worldSize must be an integer ≥ 1/);
});
