import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packedInt32Length } from './addon.js';
import { assertExact, forEachKernel, randomFloats, requireAddon, sign } from './testing.js';

const RAGGED = [1, 2, 3, 17, 63, 64, 65, 127, 129];

/** Seeded bytes (xorshift32) with runs of 0 and 255, so every bit plane is empty and full somewhere. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const p = s % 8;
    out[i] = p === 0 ? 0 : p === 1 ? 255 : (s >>> 8) & 255;
  }
  return out;
}

/** out[i][j] = Σ_t raw[i][t]·sign(w[t][j]) for raw [m][k], w [k][n] (exact integers). */
function rawTimesSigns(raw: Uint8Array, w: Float32Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) {
      const r = raw[i * k + t];
      for (let j = 0; j < n; j++) out[i * n + j] += r * sign(w[t * n + j]);
    }
  return out;
}

function packed(addon: ReturnType<typeof requireAddon>, w: Float32Array, k: number, n: number): Int32Array {
  const bits = new Int32Array(packedInt32Length(n, k));
  addon.packCols(w, k, n, bits);
  return bits;
}

test('bitplaneGemm - equals raw bytes times the ±1 weights exactly on ragged shapes, every kernel variant', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    let seed = 1;
    const shapes: [number, number, number][] = [];
    for (const m of [1, 3, 17, 65]) for (const k of RAGGED) for (const n of [1, 2, 9, 63, 129]) shapes.push([m, k, n]);
    shapes.push([100, 784, 37], [33, 4097, 9], [7, 2000, 17]);
    for (const [m, k, n] of shapes) {
      const raw = randomBytes(m * k, seed++);
      const w = randomFloats(k * n, seed++);
      const out = new Float32Array(m * n).fill(NaN);
      addon.bitplaneGemm(raw, m, k, packed(addon, w, k, n), n, out);
      assertExact(out, rawTimesSigns(raw, w, m, k, n), `${kernel} m=${m} k=${k} n=${n}`);
    }
  });
});

test('bitplaneGemm - all-255 rows reach ±255·k, one-hot bytes give ±v, zero rows give 0', () => {
  const addon = requireAddon();
  forEachKernel(addon, (kernel) => {
    for (const k of [1, 64, 65, 200, 65793]) {
      const m = 3,
        n = 2;
      const raw = new Uint8Array(m * k);
      raw.fill(255, 0, k); // row 0: all 255
      const pos = k - 1;
      raw[1 * k + pos] = 131; // row 1: one byte; row 2 stays zero
      const w = new Float32Array(k * n).fill(1); // column 0 all +1
      for (let t = 0; t < k; t++) w[t * n + 1] = -1; // column 1 all -1
      const out = new Float32Array(m * n).fill(NaN);
      addon.bitplaneGemm(raw, m, k, packed(addon, w, k, n), n, out);
      assert.deepEqual([...out], [255 * k, -255 * k, 131, -131, 0, 0], `${kernel} k=${k}`);
      // A single negative weight at pos only flips row 1's column 1.
      w.fill(1);
      w[pos * n + 1] = -0.5;
      addon.bitplaneGemm(raw, m, k, packed(addon, w, k, n), n, out);
      assert.deepEqual([...out], [255 * k, 255 * (k - 2), 131, -131, 0, 0], `${kernel} k=${k} one negative`);
    }
  });
});

test('bitplaneGemm - m or n of 0 is a no-op; bad arguments throw TypeErrors naming them', () => {
  const addon = requireAddon();
  addon.bitplaneGemm(new Uint8Array(0), 0, 5, new Int32Array(packedInt32Length(3, 5)), 3, new Float32Array(0));
  addon.bitplaneGemm(new Uint8Array(10), 2, 5, new Int32Array(0), 0, new Float32Array(0));
  const raw = new Uint8Array(2 * 70),
    w = new Int32Array(packedInt32Length(3, 70)),
    out = new Float32Array(6);
  addon.bitplaneGemm(raw, 2, 70, w, 3, out);
  const rejects = (fn: () => void, name: string, ...fragments: string[]) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof TypeError, `expected TypeError, got ${String(err)}`);
      for (const f of [`bitplaneGemm: `, `'${name}'`, ...fragments])
        assert.ok(err.message.includes(f), `"${err.message}" should mention ${f}`);
      return true;
    });
  rejects(() => addon.bitplaneGemm(new Float32Array(140) as never, 2, 70, w, 3, out), 'raw', 'Uint8Array', 'm*k = 140');
  rejects(() => addon.bitplaneGemm(new Uint8ClampedArray(140) as never, 2, 70, w, 3, out), 'raw', 'Uint8Array');
  rejects(() => addon.bitplaneGemm(new Uint8Array(139), 2, 70, w, 3, out), 'raw', 'm*k = 140');
  rejects(() => addon.bitplaneGemm(raw, 2, 0, w, 3, out), 'k', '>= 1');
  rejects(() => addon.bitplaneGemm(raw, 2.5, 70, w, 3, out), 'm');
  rejects(() => addon.bitplaneGemm(raw, 2, 70, w, -1, out), 'n');
  rejects(() => addon.bitplaneGemm(raw, 2, 70, new Int32Array(10), 3, out), 'w', 'n*ceil(k/64)', '12');
  rejects(() => addon.bitplaneGemm(raw, 2, 70, new Int32Array(14).subarray(1, 13), 3, out), 'w', 'multiple of 8');
  rejects(() => addon.bitplaneGemm(raw, 2, 70, w, 3, new Float32Array(5)), 'out', 'm*n = 6');
  rejects(
    () => addon.bitplaneGemm(new Uint8Array(65794), 1, 65794, new Int32Array(packedInt32Length(1, 65794)), 1, new Float32Array(1)),
    'k',
    '65793',
  );
  const shared = new ArrayBuffer(1024);
  rejects(() => addon.bitplaneGemm(new Uint8Array(shared, 0, 140), 2, 70, w, 3, new Float32Array(shared, 136, 6)), 'out', 'overlap');
  assert.throws(() => (addon.bitplaneGemm as (...a: unknown[]) => void)(raw, 2, 70, w, 3), /expected 6 arguments/);
});
