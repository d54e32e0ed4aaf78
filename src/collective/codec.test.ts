import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accumulateChunk, bodyBytes, encodeChunk, maxChunkElements, messageBytes, readHeader, signScales, HEADER_BYTES } from './codec.js';
import { halfBitsToFloat } from './fp16.js';
import { blockScales, laneMeanAbs } from './sign-ef.js';
import { randomGradient } from './testing.js';

test('codec - byte counts per format', () => {
  assert.equal(bodyBytes('none', 1000), 4000);
  assert.equal(bodyBytes('fp16', 1000), 2000);
  assert.equal(bodyBytes('sign-ef', 1000), 4 * 4 + 125); // a scale per 256 elements
  assert.equal(bodyBytes('sign-ef', 1001), 4 * 4 + 126);
  assert.equal(bodyBytes('sign-ef', 256), 4 + 32);
  assert.equal(messageBytes('none', 3), HEADER_BYTES + 12);
  assert.equal(maxChunkElements('none', 4096), 1022);
  assert.equal(maxChunkElements('fp16', 4096), 2044);
  assert.equal(maxChunkElements('sign-ef', 4096), 113 * 256); // whole blocks (36 bytes each) only, so chunks keep the bucket's block grid
  assert.ok(messageBytes('sign-ef', maxChunkElements('sign-ef', 4096)) <= 4096);
  assert.equal(maxChunkElements('sign-ef', 40), 8 * (40 - HEADER_BYTES - 4)); // less than one block: the bits that fit
  // a sign-ef chunk never spans more than 2^21 elements, however large max_payload is
  assert.equal(maxChunkElements('sign-ef', 200_000), Math.floor((200_000 - HEADER_BYTES) / 36) * 256);
  assert.equal(maxChunkElements('sign-ef', 2 ** 20), 2 ** 21);
});

test('codec - none and the header round-trip exactly', () => {
  const v = randomGradient(37, 1);
  const msg = encodeChunk('none', 300, v, null);
  assert.deepEqual(readHeader(msg), { codec: 'none', rank: 300, count: 37 });
  const out = new Float32Array(37);
  accumulateChunk('none', msg, 37, out, true);
  assert.deepEqual(out, v);
  // an unaligned copy of the message decodes the same
  const shifted = new Uint8Array(msg.byteLength + 1).subarray(1);
  shifted.set(msg);
  const out2 = new Float32Array(37);
  accumulateChunk('none', shifted, 37, out2, true);
  assert.deepEqual(out2, v);
  assert.equal(readHeader(msg.subarray(0, msg.byteLength - 1)), null);
});

test('codec - sign-ef chunk carries scale = mean |v| and one sign bit per element, residual = v − decoded', () => {
  const v = new Float32Array([0.5, -1.5, 0, -0.25, 2, 3, -4, 1, 0.75, -0.125, 1.25]); // 11 elements: a partial last byte
  const residual = new Float32Array(v.length);
  const msg = encodeChunk('sign-ef', 2, v, residual);
  assert.equal(msg.byteLength, HEADER_BYTES + 4 + 2);
  const expectScale = laneMeanAbs(v);
  assert.deepEqual(signScales(msg, v.length), Float32Array.of(expectScale));
  // bit k of byte j = element 8j+k is non-negative (sign(0) = +1)
  const bits = msg.subarray(HEADER_BYTES + 4);
  let expectBits0 = 0;
  let expectBits1 = 0;
  v.forEach((x, i) => {
    if (x >= 0) {
      if (i < 8) expectBits0 |= 1 << i;
      else expectBits1 |= 1 << (i - 8);
    }
  });
  assert.equal(bits[0], expectBits0);
  assert.equal(bits[1], expectBits1);
  const decoded = new Float32Array(v.length);
  accumulateChunk('sign-ef', msg, v.length, decoded, true);
  v.forEach((x, i) => {
    assert.equal(decoded[i], x >= 0 ? expectScale : -expectScale);
    assert.equal(residual[i], Math.fround(x - (decoded[i] as number)));
  });
  // the next encode adds the residual first: what it sends is sign(v + e)
  const again = encodeChunk('sign-ef', 2, v, residual);
  const withEf = v.map((x, i) => Math.fround(x + Math.fround(x - (decoded[i] as number))));
  assert.deepEqual(signScales(again, v.length), Float32Array.of(laneMeanAbs(withEf)));
});

test('codec - fp16 chunk decodes within half precision and accumulates in float32', () => {
  const v = randomGradient(1000, 7, 3);
  const msg = encodeChunk('fp16', 0, v, null);
  assert.equal(msg.byteLength, HEADER_BYTES + 2000);
  const out = new Float32Array(1000);
  accumulateChunk('fp16', msg, 1000, out, true);
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    // relative error ≤ 2^-11 for normal halves (x here ≥ 2^-14 in magnitude or absolute ≤ 2^-25)
    assert.ok(Math.abs((out[i] as number) - x) <= Math.max(Math.abs(x) * 2 ** -11, 2 ** -25), `${x} → ${out[i]}`);
  }
  const acc = Float32Array.from(v);
  accumulateChunk('fp16', msg, 1000, acc, false);
  const h = new Uint16Array(msg.buffer, HEADER_BYTES, 1000);
  for (let i = 0; i < 1000; i++) assert.equal(acc[i], Math.fround((v[i] as number) + halfBitsToFloat(h[i] as number)));
});

test('codec - sign-ef over whole 32-bit words and a tail matches the per-element definition, aligned or not', () => {
  const n = 32 * 3 + 13;
  const v = randomGradient(n, 4);
  v[5] = -0; // sign(−0) = +1
  v[40] = 0;
  const residual = randomGradient(n, 5, 0.1);
  const before = Float32Array.from(residual);
  const msg = encodeChunk('sign-ef', 1, v, residual);
  assert.equal(msg.byteLength, HEADER_BYTES + 4 + Math.ceil(n / 8));
  const u = v.map((x, i) => Math.fround(x + (before[i] as number)) + 0);
  const scale = laneMeanAbs(u);
  assert.deepEqual(signScales(msg, n), Float32Array.of(scale));
  for (let i = 0; i < n; i++) {
    const bit = ((msg[HEADER_BYTES + 4 + (i >> 3)] as number) >> (i & 7)) & 1;
    assert.equal(bit, (u[i] as number) >= 0 ? 1 : 0, `bit ${i}`);
    assert.equal(residual[i], Math.fround((u[i] as number) - (bit ? scale : -scale)), `residual ${i}`);
  }
  for (const shift of [0, 1, 2, 3]) {
    const copy = new Uint8Array(msg.byteLength + shift).subarray(shift);
    copy.set(msg);
    const out = new Float32Array(n).fill(1);
    accumulateChunk('sign-ef', copy, n, out, false);
    for (let i = 0; i < n; i++)
      assert.equal(out[i], Math.fround(1 + ((u[i] as number) >= 0 ? scale : -scale)), `shift ${shift} element ${i}`);
  }
});

test('codec - decodedOut (even aliasing the input) equals decoding the message', () => {
  for (const codec of ['fp16', 'sign-ef'] as const) {
    const v = randomGradient(1000 + 7, 12);
    const r1 = new Float32Array(v.length);
    const r2 = new Float32Array(v.length);
    const msg = encodeChunk(codec, 0, v, r1);
    const decoded = new Float32Array(v.length);
    accumulateChunk(codec, msg, v.length, decoded, true);
    const inPlace = Float32Array.from(v);
    const msg2 = encodeChunk(codec, 0, inPlace, r2, inPlace);
    assert.deepEqual(msg2, msg, codec);
    assert.deepEqual(inPlace, decoded, codec);
    assert.deepEqual(r2, r1, codec);
  }
});

test('codec - sign-ef has one scale per block of 256 elements (the last one shorter)', () => {
  const n = 3 * 256 + 77;
  const v = randomGradient(n, 21);
  for (let i = 256; i < 512; i++) v[i] = (v[i] as number) * 1000; // block 1 much larger
  const residual = new Float32Array(n);
  const msg = encodeChunk('sign-ef', 0, v, residual);
  assert.equal(msg.byteLength, HEADER_BYTES + 4 * 4 + Math.ceil(n / 8));
  const scales = signScales(msg, n);
  assert.deepEqual(scales, blockScales(v));
  assert.equal(scales[3], laneMeanAbs(v.subarray(768)));
  const decoded = new Float32Array(n);
  accumulateChunk('sign-ef', msg, n, decoded, true);
  for (let i = 0; i < n; i++) assert.equal(Math.abs(decoded[i] as number), scales[Math.floor(i / 256)], `element ${i}`);
});
