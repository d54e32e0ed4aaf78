import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, deriveSeed, splitmix64 } from './rng.js';

const draw = (rng: Rng, k: number): number[] => Array.from({ length: k }, () => rng.nextU32());

test('rng - xoshiro128** matches the reference outputs for state {1,2,3,4}', () => {
  const rng = new Rng(0);
  rng.setState({ s0: 1, s1: 2, s2: 3, s3: 4 });
  assert.deepEqual(draw(rng, 8), [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849]);
});

test('rng - splitmix64 matches the reference outputs', () => {
  assert.equal(splitmix64(0n).value, 0xe220a8397b1dcdafn);
  let s = 1234567n;
  const out: bigint[] = [];
  for (let i = 0; i < 3; i++) {
    const r = splitmix64(s);
    out.push(r.value);
    s = r.next;
  }
  assert.deepEqual(out, [6457827717110365317n, 3203168211198807973n, 9817491932198370423n]);
});

test('rng - a seed gives the same sequence (golden values guard cross-machine drift)', () => {
  assert.deepEqual(draw(new Rng(42), 2), [1776835114, 4165204688]);
  assert.deepEqual(draw(new Rng(42), 100), draw(new Rng(42), 100));
  assert.notDeepEqual(draw(new Rng(42), 10), draw(new Rng(43), 10));
  assert.notDeepEqual(draw(new Rng(-1), 10), draw(new Rng(1), 10));
});

test('rng - getState/setState through JSON resumes the exact sequence', () => {
  const a = new Rng(7);
  a.normal();
  a.int(10);
  a.nextFloat();
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const expected = [a.nextU32(), a.nextFloat(), a.normal(), a.int(1000)];
  const b = new Rng(999);
  b.setState(saved);
  assert.deepEqual([b.nextU32(), b.nextFloat(), b.normal(), b.int(1000)], expected);
  for (const w of Object.values(a.getState())) assert.ok(Number.isInteger(w) && w >= 0 && w < 2 ** 32);
});

test('rng - setState rejects all-zero and non-uint32 words', () => {
  const rng = new Rng(1);
  assert.throws(() => rng.setState({ s0: 0, s1: 0, s2: 0, s3: 0 }), /all zero/);
  assert.throws(() => rng.setState({ s0: -1, s1: 1, s2: 1, s3: 1 }), /s0 must be a uint32/);
  assert.throws(() => rng.setState({ s0: 1, s1: 2 ** 32, s2: 1, s3: 1 }), /s1 must be a uint32/);
  assert.throws(() => new Rng(0.5), /seed must be a safe integer/);
});

test('rng - nextFloat is in [0,1) and normal has mean 0 and std 1', () => {
  const rng = new Rng(3);
  const n = 20_000;
  let fsum = 0;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const f = rng.nextFloat();
    assert.ok(f >= 0 && f < 1);
    fsum += f;
    const z = rng.normal();
    sum += z;
    sumSq += z * z;
  }
  assert.ok(Math.abs(fsum / n - 0.5) < 0.01, `float mean ${fsum / n}`);
  const mean = sum / n;
  assert.ok(Math.abs(mean) < 0.03, `normal mean ${mean}`);
  assert.ok(Math.abs(Math.sqrt(sumSq / n - mean * mean) - 1) < 0.03, 'normal std');
  assert.ok(Math.abs(new Rng(3).normal(10, 0) - 10) === 0);
});

test('rng - int(n) has no modulo bias and checks n', () => {
  // With n = 3·2^30 plain `x % n` returns values below 2^30 half the time instead of a third.
  const rng = new Rng(11);
  const n = 3 * 2 ** 30;
  let low = 0;
  const draws = 6000;
  for (let i = 0; i < draws; i++) {
    const v = rng.int(n);
    assert.ok(Number.isInteger(v) && v >= 0 && v < n);
    if (v < 2 ** 30) low++;
  }
  assert.ok(Math.abs(low / draws - 1 / 3) < 0.03, `fraction below 2^30: ${low / draws}`);
  assert.equal(rng.int(1), 0);
  assert.ok(rng.int(2 ** 32) < 2 ** 32);
  for (const bad of [0, 1.5, 2 ** 32 + 1, Number.NaN]) assert.throws(() => rng.int(bad), RangeError);
});

test('rng - shuffleInPlace keeps the elements and makes all orders equally likely', () => {
  const rng = new Rng(5);
  const counts = new Map<string, number>();
  const trials = 12_000;
  for (let t = 0; t < trials; t++) {
    const key = rng.shuffleInPlace(['a', 'b', 'c']).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 6);
  for (const [key, c] of counts) assert.ok(Math.abs(c - trials / 6) < 120, `${key}: ${c}`);
  const arr = Uint32Array.from({ length: 100 }, (_, i) => i);
  assert.equal(new Rng(1).shuffleInPlace(arr), arr);
  assert.deepEqual(
    [...arr].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual(new Rng(1).shuffleInPlace([...Array(100).keys()]), [...arr]);
});

test('rng - deriveSeed is deterministic and separates streams', () => {
  const s = deriveSeed(42, 'epoch', 3);
  assert.equal(s, deriveSeed(42, 'epoch', 3));
  assert.ok(Number.isSafeInteger(s) && s >= 0);
  const others = [
    deriveSeed(42, 'epoch', 4),
    deriveSeed(43, 'epoch', 3),
    deriveSeed(42, 3, 'epoch'),
    deriveSeed(42, 'epoch', '3'),
    deriveSeed(42, 'epoch'),
    deriveSeed(42),
  ];
  assert.equal(new Set([s, ...others]).size, others.length + 1);
  assert.deepEqual(draw(Rng.derive(42, 'layer', 1), 5), draw(new Rng(deriveSeed(42, 'layer', 1)), 5));
  assert.throws(() => deriveSeed(42, 1.5), /stream id must be a safe integer/);
});

test('rng - fillBernoulli gives the nextFloat() < p loop exactly and leaves the same state', () => {
  for (const p of [0, 0.3, 0.7, 1]) {
    const a = Rng.derive(7, 'dropout', String(p));
    const b = Rng.derive(7, 'dropout', String(p));
    const want = new Float32Array(1001);
    for (let i = 0; i < want.length; i++) want[i] = a.nextFloat() < p ? 1 / p : 0;
    const got = b.fillBernoulli(new Float32Array(1001), p, 1 / p);
    assert.deepEqual(got, want);
    assert.deepEqual(b.getState(), a.getState());
    assert.equal(b.nextU32(), a.nextU32());
  }
  const kept = Rng.derive(1, 'x')
    .fillBernoulli(new Float32Array(100_000), 0.7, 1)
    .reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(kept / 100_000 - 0.7) < 0.01, `kept fraction ${kept / 100_000}`);
});
