import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floatBitsToHalfBits, halfBitsToFloat } from './fp16.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(x: number): number {
  f32[0] = x;
  return floatBitsToHalfBits(u32[0] as number);
}

test('fp16 - every half value round-trips exactly', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = halfBitsToFloat(h);
    if (Number.isNaN(v)) {
      assert.ok(Number.isNaN(halfBitsToFloat(toHalf(v))), `NaN 0x${h.toString(16)}`);
      continue;
    }
    assert.equal(toHalf(v), h, `0x${h.toString(16)} (${v})`);
  }
});

test('fp16 - midpoints between neighbours round to the even one; just off them round to nearest', () => {
  for (let h = 0; h < 0x7bff; h++) {
    const lo = halfBitsToFloat(h);
    const hi = halfBitsToFloat(h + 1);
    const mid = (lo + hi) / 2; // exact in float32: halves have 11 significant bits
    assert.equal(Math.fround(mid), mid);
    const even = h % 2 === 0 ? h : h + 1;
    assert.equal(toHalf(mid), even, `mid of 0x${h.toString(16)}`);
    assert.equal(toHalf(-mid), even | 0x8000);
    const below = Math.fround(mid - (hi - lo) / 64);
    const above = Math.fround(mid + (hi - lo) / 64);
    assert.equal(toHalf(below), h);
    assert.equal(toHalf(above), h + 1);
  }
});

test('fp16 - overflow to infinity, tiny values to signed zero, NaN stays NaN', () => {
  assert.equal(toHalf(65504), 0x7bff);
  assert.equal(toHalf(65519.99), 0x7bff);
  assert.equal(toHalf(65520), 0x7c00); // the midpoint to the next (absent) value rounds to even = Inf
  assert.equal(toHalf(1e9), 0x7c00);
  assert.equal(toHalf(-Infinity), 0xfc00);
  assert.equal(toHalf(2 ** -25), 0); // tie between 0 and the smallest subnormal: even is 0
  assert.equal(toHalf(Math.fround(2 ** -25 * 1.01)), 1);
  assert.equal(toHalf(-1e-30), 0x8000);
  assert.ok(Number.isNaN(halfBitsToFloat(toHalf(NaN))));
});
