import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecKernels, jsKernels, nativeKernels, type CodecKernels } from './codec-kernels.js';
import { loadNativeCodec } from '../native/addon.js';
import { randomGradient } from './testing.js';
import { blockScales } from './sign-ef.js';

const native = loadNativeCodec();
const skipNative = native.codec ? false : `native codec kernels unavailable: ${native.reason}`;

/** Sizes around every vector width and lane count, plus a large one. */
const SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4099, 65_537];

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Equal bit for bit, except that two NaNs are equal whatever their payloads. */
function assertSameFloats(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const x = bitsOf(a);
  const y = bitsOf(b);
  for (let i = 0; i < a.length; i++) {
    if (x[i] === y[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]))) continue;
    assert.fail(
      `${what}: element ${i} differs: ${a[i]} (0x${(x[i] as number).toString(16)}) vs ${b[i]} (0x${(y[i] as number).toString(16)})`,
    );
  }
}

/** A vector with awkward values mixed in: ±0, subnormals, huge, half-precision edge cases. */
function awkward(n: number, seed: number): Float32Array {
  const v = randomGradient(n, seed, 2);
  const specials = [
    0,
    -0,
    1e-40,
    -1e-40,
    3.4e38,
    -3.4e38,
    65504,
    65520,
    -65519.99,
    6.1e-5,
    5.96e-8,
    2.98e-8,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1e-8,
  ];
  for (let i = 0; i < n; i += 7) v[i] = specials[(i / 7) % specials.length] as number;
  return v;
}

/** Copies `bytes` to a buffer at byte offset `shift`, so kernels see unaligned input. */
function shifted(bytes: Uint8Array, shift: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength + shift).subarray(shift);
  out.set(bytes);
  return out;
}

function variants(): Array<'avx512' | 'avx2' | 'portable'> {
  const c = native.codec;
  if (!c) return [];
  const prev = c.codecKernel();
  const ok: Array<'avx512' | 'avx2' | 'portable'> = [];
  for (const v of ['avx512', 'avx2', 'portable'] as const) {
    try {
      c.codecKernel(v);
      ok.push(v);
    } catch {
      // not supported by this CPU
    }
  }
  c.codecKernel(prev);
  return ok;
}

function forEachVariant(fn: (k: CodecKernels, variant: string) => void): void {
  const c = native.codec;
  const k = nativeKernels().kernels;
  if (!c || !k) return;
  const prev = c.codecKernel();
  try {
    for (const v of variants()) {
      c.codecKernel(v);
      fn(k, v);
    }
  } finally {
    c.codecKernel(prev);
  }
}

test('codec kernels - the portable variant is always available; the best one is chosen by default', { skip: skipNative }, () => {
  const vs = variants();
  assert.ok(vs.includes('portable'));
  assert.equal(native.codec?.codecKernel(), vs[0]);
  assert.throws(() => native.codec?.codecKernel('sse9' as 'auto'), /unknown: expected auto, avx512, avx2 or portable/);
  assert.match(codecKernels().name, /^native-(avx512|avx2|portable)$/);
});

test('codec kernels - fp32 sum: native equals JavaScript bit for bit (first, add, divisor; unaligned input)', { skip: skipNative }, () => {
  forEachVariant((k, variant) => {
    for (const n of SIZES) {
      const src = new Uint8Array(awkward(n, n + 1).buffer);
      const base = awkward(n, n + 2);
      for (const first of [true, false]) {
        for (const divisor of [1, 2, 3]) {
          for (const shift of [0, 1, 3]) {
            const a = Float32Array.from(base);
            const b = Float32Array.from(base);
            jsKernels.addF32(shifted(src, shift), a, first, divisor);
            k.addF32(shifted(src, shift), b, first, divisor);
            assertSameFloats(b, a, `${variant} n=${n} first=${first} divisor=${divisor} shift=${shift}`);
          }
        }
      }
    }
  });
});

test('codec kernels - sign-ef encode: same scales, bits, residual and decoded values as JavaScript', { skip: skipNative }, () => {
  forEachVariant((k, variant) => {
    for (const n of [...SIZES, 255, 256, 257, 511, 512, 513, 3 * 256 + 17]) {
      const v = awkward(n, 3 * n + 1);
      if (n > 5) v[5] = -0;
      if (n > 600)
        v.subarray(256, 512).forEach((x, i, a) => {
          a[i] = x * 1e4;
        }); // blocks of different magnitude
      const r0 = randomGradient(n, n + 9, 0.1);
      const nb = Math.ceil(n / 256);
      const what = `${variant} n=${n}`;
      const run = (kk: CodecKernels, values: Float32Array, decoded: Float32Array | null) => {
        const residual = Float32Array.from(r0);
        const scales = new Uint8Array(4 * nb).fill(0xee);
        const bits = new Uint8Array(Math.ceil(n / 8)).fill(0x55);
        kk.signEncode(values, residual, scales, bits, decoded);
        return { residual, scales, bits };
      };
      const dJs = new Float32Array(n);
      const js = run(jsKernels, v, dJs);
      const dNa = new Float32Array(n);
      const na = run(k, v, dNa);
      assert.deepEqual(na.scales, js.scales, `${what}: scales`);
      assert.deepEqual(
        new Float32Array(js.scales.buffer),
        blockScales(v.map((x, i) => Math.fround(x + (r0[i] as number)) + 0)),
        `${what}: scale definition`,
      );
      assert.deepEqual(na.bits, js.bits, `${what}: bits`);
      assertSameFloats(na.residual, js.residual, `${what}: residual`);
      assertSameFloats(dNa, dJs, `${what}: decoded`);
      // decodedOut aliasing values, and no decodedOut at all
      const inPlace = Float32Array.from(v);
      const ip = run(k, inPlace, inPlace);
      assert.deepEqual(ip.bits, js.bits);
      assertSameFloats(inPlace, dJs, `${what}: decoded in place`);
      const no = run(k, v, null);
      assert.deepEqual(no.bits, js.bits);
      assertSameFloats(no.residual, js.residual, `${what}: residual without decodedOut`);
      // decode-and-accumulate, scales and bits unaligned
      for (const first of [true, false]) {
        for (const divisor of [1, 3]) {
          const aJs = awkward(n, 5);
          const aNa = Float32Array.from(aJs);
          jsKernels.signAccumulate(shifted(js.scales, 1), shifted(js.bits, 3), aJs, first, divisor);
          k.signAccumulate(shifted(js.scales, 1), shifted(js.bits, 3), aNa, first, divisor);
          assertSameFloats(aNa, aJs, `${what}: accumulate first=${first} divisor=${divisor}`);
        }
      }
    }
  });
});

test('codec kernels - fp16 encode and accumulate: native equals JavaScript (all finite halves, random floats)', {
  skip: skipNative,
}, () => {
  // every half bit pattern's float value, its neighbours (ties), plus random and awkward floats
  const every = new Float32Array(65536 * 3);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const e = (h >>> 10) & 0x1f;
    const sign = h & 0x8000 ? -1 : 1;
    const m = h & 0x3ff;
    f[0] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? sign * Infinity : sign * (1 + m / 1024) * 2 ** (e - 15);
    every[3 * h] = f[0] as number;
    u[0] = (u[0] as number) + 0x1000; // halfway to the next half (a tie) for normal halves
    every[3 * h + 1] = f[0] as number;
    u[0] = (u[0] as number) + 1;
    every[3 * h + 2] = f[0] as number;
  }
  const inputs = [every, awkward(4099, 8), randomGradient(10_001, 9, 1e-4), randomGradient(33, 10, 7e4)];
  forEachVariant((k, variant) => {
    for (const [idx, v] of inputs.entries()) {
      const n = v.length;
      const hJs = new Uint8Array(2 * n);
      const hNa = new Uint8Array(2 * n);
      const dJs = new Float32Array(n);
      const dNa = new Float32Array(n);
      jsKernels.halfEncode(v, hJs, dJs);
      k.halfEncode(v, hNa, dNa);
      const what = `${variant} input ${idx}`;
      assert.deepEqual(hNa, hJs, `${what}: half bits`);
      assertSameFloats(dNa, dJs, `${what}: decoded`);
      for (const first of [true, false]) {
        const aJs = randomGradient(n, 11);
        const aNa = Float32Array.from(aJs);
        jsKernels.halfAccumulate(shifted(hJs, 1), aJs, first, 2);
        k.halfAccumulate(shifted(hJs, 1), aNa, first, 2);
        assertSameFloats(aNa, aJs, `${what}: accumulate first=${first}`);
      }
    }
  });
});

test('codec kernels - scaled copy: native equals the JavaScript float64 product rounded to float32', { skip: skipNative }, () => {
  forEachVariant((k, variant) => {
    for (const n of SIZES) {
      const src = awkward(n, 40 + n);
      for (const scale of [0.5, 86 / 256, 1 / 3, 85 / 255, 1e-30, 3e38]) {
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        jsKernels.scaleInto(src, a, scale);
        k.scaleInto(src, b, scale);
        assertSameFloats(b, a, `${variant} n=${n} scale=${scale}`);
        const inPlace = Float32Array.from(src);
        k.scaleInto(inPlace, inPlace, scale);
        assertSameFloats(inPlace, a, `${variant} n=${n} scale=${scale} in place`);
      }
    }
  });
});

/** Ragged sizes, each with NaN, ±Inf (and -0, which is finite) at its start, middle and end. */
function* nonFiniteCases(): Generator<{ n: number; at: number; special: number; what: string }> {
  for (const n of [1, 2, 3, 17, 63, 65, 257]) {
    for (const at of new Set([0, n >> 1, n - 1])) {
      for (const special of [Number.NaN, Infinity, -Infinity, -0]) yield { n, at, special, what: `n=${n} ${special}@${at}` };
    }
  }
}

/** The kernels in use here: the JavaScript twin, then every native variant. */
function eachKernels(fn: (k: CodecKernels, name: string) => void): void {
  fn(jsKernels, 'js');
  forEachVariant(fn);
}

test('codec kernels - accumulate reports a decoded NaN or Inf (never -0), every variant and the JavaScript twin alike', () => {
  eachKernels((k, name) => {
    for (const { n, at, special, what } of nonFiniteCases()) {
      const bad = !Number.isFinite(special);
      const v = randomGradient(n, n + at, 3);
      v[at] = special;
      const acc = randomGradient(n, 7);
      assert.equal(k.addF32(shifted(new Uint8Array(v.buffer), 1), acc, false, 1), bad, `${name} addF32 ${what}`);
      assert.equal(k.addF32(new Uint8Array(v.buffer), acc, true, 3), bad, `${name} addF32 first ${what}`);
      const half = new Uint8Array(2 * n);
      jsKernels.halfEncode(v, half, null);
      assert.equal(k.halfAccumulate(shifted(half, 1), acc, false, 1), bad, `${name} halfAccumulate ${what}`);
      // one sign-ef scale per 256 elements: the special value is the scale of element `at`'s block
      const scales = new Float32Array(Math.ceil(n / 256)).fill(0.5);
      scales[at >> 8] = special;
      const signs = new Uint8Array(Math.ceil(n / 8)).fill(0xa5);
      assert.equal(k.signAccumulate(new Uint8Array(scales.buffer), signs, acc, false, 2), bad, `${name} signAccumulate ${what}`);
    }
  });
});

test('codec kernels - scaled copy reports NaN and values at or beyond its limit; the first non-finite index', () => {
  eachKernels((k, name) => {
    for (const { n, at, special, what } of nonFiniteCases()) {
      const v = randomGradient(n, 3 * n + at, 100);
      v[at] = special;
      const dst = new Float32Array(n);
      assert.equal(k.scaleInto(v, dst, 0.5), !Number.isFinite(special), `${name} scaleInto ${what}`);
      assert.equal(k.scaleInto(v, dst, 1, 65520), !Number.isFinite(special), `${name} scaleInto, fp16 limit ${what}`);
      assert.equal(k.firstNonFinite(v), Number.isFinite(special) ? -1 : at, `${name} firstNonFinite ${what}`);
      v[at] = 65519.99;
      assert.equal(k.scaleInto(v, dst, 1, 65520), false, `${name} below the fp16 limit ${what}`);
      v[at] = -65520;
      assert.equal(k.scaleInto(v, dst, 1, 65520), true, `${name} at the fp16 limit ${what}`);
      assert.equal(k.scaleInto(v, dst, 1), false, `${name} finite without a limit ${what}`);
      assert.equal(k.scaleInto(v, dst, (1e38 / 65520) * 10), true, `${name} overflow to Inf ${what}`);
    }
    assert.equal(k.firstNonFinite(new Float32Array(0)), -1);
  });
});

test('codec kernels - wrong arguments name what is wrong', { skip: skipNative }, () => {
  const c = native.codec;
  assert.ok(c);
  assert.throws(
    () => c.codecAddF32(new Uint8Array(7), new Float32Array(2), true),
    /argument 'src' must be a Uint8Array of length 4\*acc.length = 8/,
  );
  assert.throws(
    () => c.codecSignEncode(new Float32Array(9), new Float32Array(9), new Uint8Array(4), new Uint8Array(1)),
    /argument 'bits' must be a Uint8Array of length ceil\(values.length\/8\) = 2/,
  );
  assert.throws(
    () => c.codecSignEncode(new Float32Array(300), new Float32Array(300), new Uint8Array(4), new Uint8Array(38)),
    /argument 'scales' must be a Uint8Array of length 4\*ceil\(values.length\/256\) = 8/,
  );
  const shared = new Float32Array(16);
  assert.throws(
    () => c.codecSignEncode(shared.subarray(0, 8), shared.subarray(4, 12), new Uint8Array(4), new Uint8Array(1)),
    /must not overlap/,
  );
  assert.throws(() => c.codecHalfAccumulate(new Uint8Array(4), new Float32Array(2), false, 0), /divisor/);
  assert.throws(() => c.codecScaleInto(new Float32Array(2), new Float32Array(2), 1, 0), /argument 'limit' must be a number > 0/);
});
