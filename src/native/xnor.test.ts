import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packedInt32Length } from './addon.js';
import {
  assertExact,
  convGeometry,
  convRef,
  filterSize,
  forEachKernel,
  inputSize,
  outputSize,
  randomFloats,
  requireAddon,
  sign,
} from './testing.js';

const RAGGED = [1, 2, 3, 17, 63, 64, 65, 127, 129];

/** C[i][j] = Σ_t sign(a[i][t])·sign(b[t][j]) for a [m][k], b [k][n], in float64 (exact integers). */
function signProduct(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) {
      const s = sign(a[i * k + t]);
      for (let j = 0; j < n; j++) c[i * n + j] += s * sign(b[t * n + j]);
    }
  return c;
}

test('xnorGemm - equals the float product of the signs exactly on ragged shapes, every kernel variant', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    let seed = 1;
    const shapes: [number, number, number][] = [];
    for (const m of [1, 3, 17, 65]) for (const k of RAGGED) for (const n of [1, 2, 63, 129]) shapes.push([m, k, n]);
    shapes.push([100, 1000, 37], [33, 4097, 9]);
    for (const [m, k, n] of shapes) {
      const a = randomFloats(m * k, seed++);
      const w = randomFloats(k * n, seed++);
      const aBits = new Int32Array(packedInt32Length(m, k));
      const wBits = new Int32Array(packedInt32Length(n, k));
      addon.packRows(a, m, k, aBits);
      addon.packCols(w, k, n, wBits);
      const c = new Float32Array(m * n).fill(NaN);
      addon.xnorGemm(aBits, wBits, m, n, k, c);
      assertExact(c, signProduct(a, w, m, k, n), `${kernel} m=${m} k=${k} n=${n}`);
    }
  });
});

test('packRows - bit j of word w is value[64w+j] < 0, tail bits zero, -0 and NaN pack as +1', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    const k = 70;
    const src = new Float32Array(k).fill(1);
    src[0] = -1;
    src[63] = -0.5;
    src[64] = -0;
    src[65] = NaN;
    src[69] = -Infinity;
    src[66] = 0;
    const dst = new Int32Array(4).fill(-1);
    addon.packRows(src, 1, k, dst);
    // word 0: bits 0 and 63 -> low int32 = 1, high int32 = 1 << 31; word 1: bit 5 (index 69).
    assert.deepEqual([...dst], [1, 1 << 31, 1 << 5, 0], kernel);
  });
});

test('xnorGemm - one-hot inputs give the hand-derived K, K-2 and -K', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    for (const k of [1, 64, 65, 200]) {
      const m = 3,
        n = 2,
        pos = k - 1;
      const a = new Float32Array(m * k).fill(1);
      a[1 * k + pos] = -1; // row 1: one negative element
      a.fill(-1, 2 * k, 3 * k); // row 2: all negative
      const w = new Float32Array(k * n).fill(0); // [k][n]: zeros are +1
      w[pos * n + 1] = -3; // column 1 negative at pos
      const aBits = new Int32Array(packedInt32Length(m, k));
      const wBits = new Int32Array(packedInt32Length(n, k));
      addon.packRows(a, m, k, aBits);
      addon.packCols(w, k, n, wBits);
      const c = new Float32Array(m * n);
      addon.xnorGemm(aBits, wBits, m, n, k, c);
      assert.deepEqual([...c], [k, k - 2, k - 2, k, -k, -k + 2], `${kernel} k=${k}`);
    }
  });
});

test('binaryConv2d - equals the float conv of the signs with zero padding, stride 1 and 2, same and valid', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    let seed = 100;
    for (const inC of [1, 3, 64, 65])
      for (const stride of [1, 2])
        for (const pad of ['same', 'valid'] as const)
          for (const [h, w, kh, kw] of [
            [7, 6, 3, 3],
            [5, 9, 5, 1],
            [4, 4, 2, 2],
          ]) {
            const g = convGeometry(2, h, w, inC, kh, kw, 5, stride, pad);
            const x = randomFloats(inputSize(g), seed++);
            const f = randomFloats(filterSize(g), seed++);
            const want = convRef(x.map(sign), f.map(sign), g);
            const what = `${kernel} ${JSON.stringify(g)}`;
            const out = new Float32Array(outputSize(g)).fill(NaN);
            addon.binaryConv2d(x, f, g, out);
            assertExact(out, want, `${what} (float filter)`);
            const bits = new Int32Array(packedInt32Length(g.outC, g.kH * g.kW * g.inC));
            addon.packCols(f, g.kH * g.kW * g.inC, g.outC, bits);
            out.fill(NaN);
            addon.binaryConv2d(x, bits, g, out);
            assertExact(out, want, `${what} (packed filter)`);
          }
  });
});

test('binaryConv2d - all-ones 3x3 same conv counts in-bounds taps (padding adds 0, not +1)', () => {
  const addon = requireAddon();
  const g = convGeometry(1, 3, 3, 2, 3, 3, 1, 1, 'same');
  const out = new Float32Array(9);
  addon.binaryConv2d(new Float32Array(18).fill(1), new Float32Array(18).fill(1), g, out);
  assert.deepEqual([...out], [8, 12, 8, 12, 18, 12, 8, 12, 8]);
});
