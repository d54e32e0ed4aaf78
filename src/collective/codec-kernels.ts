/**
 * The element kernels of the wire formats (codec.ts): the fp32 sum, sign-ef and fp16 encode /
 * decode-and-accumulate. Two implementations with bit-identical results: the native addon's
 * (native/src/codec: AVX-512, AVX2+F16C or portable, picked at run time) and this file's
 * JavaScript, used when the addon is missing or out of date, or when BNN_CODEC_KERNEL=js.
 *
 * Definitions both follow (so every rank decodes the same bits whatever kernel it runs):
 *  - sums, differences and the final division are float32 operations per element, in order;
 *  - sign-ef: u = (v + e) + 0 (−0 → +0); one scale per block of 256 elements, s_b = mean |u|
 *    over the block computed as 16 float64 partial sums (lane j takes the block's elements
 *    i ≡ j mod 16, in order), added lane 0..15, divided by the block's length and rounded to
 *    float32; bit i = 1 when u_i is not negative; e ← u − (±s_b);
 *  - fp16: IEEE binary16, round to nearest even (fp16.ts). NaNs stay NaNs, but their payload
 *    bits may differ between the two implementations.
 * The decode-and-accumulate kernels also say whether a value they decoded was NaN or ±Inf (the
 * all-reduce names the sender of such a chunk), and the scaled copy whether a value it wrote
 * was out of range: tests folded into passes that read every value anyway.
 */
import { loadNativeCodec } from '../native/addon.js';
import { floatBitsToHalfBits, halfTable } from './fp16.js';
import { accumulateSigns, encodeSigns } from './sign-ef.js';

export interface CodecKernels {
  /** `js`, or `native-<variant>` (avx512, avx2, portable). */
  readonly name: string;
  /**
   * acc[i] = first ? src[i] : acc[i] + src[i] (src: 4·acc.length bytes of LE fp32, any alignment),
   * then acc[i] /= divisor. True when some src[i] is NaN or ±Inf.
   */
  addF32(src: Uint8Array, acc: Float32Array, first: boolean, divisor: number): boolean;
  /** sign-ef encode (see above) into `scales` (4·⌈n/256⌉ bytes, LE fp32) and `bits` (⌈n/8⌉ bytes), all written. `decodedOut` may be `values`. */
  signEncode(values: Float32Array, residual: Float32Array, scales: Uint8Array, bits: Uint8Array, decodedOut: Float32Array | null): void;
  /** acc[i] = (first ? 0 : acc[i]) + (bit i ? s_b : −s_b), then /= divisor (scales and bits at any alignment). True when some s_b is NaN or ±Inf. */
  signAccumulate(scales: Uint8Array, bits: Uint8Array, acc: Float32Array, first: boolean, divisor: number): boolean;
  /** dst (2n bytes) = half(src), LE; decodedOut (may be `src`) = the rounded values. */
  halfEncode(src: Float32Array, dst: Uint8Array, decodedOut: Float32Array | null): void;
  /** acc[i] = (first ? 0 : acc[i]) + half(src[i]) (src: 2·acc.length bytes, any alignment), then /= divisor. True when some half is NaN or ±Inf. */
  halfAccumulate(src: Uint8Array, acc: Float32Array, first: boolean, divisor: number): boolean;
  /**
   * dst[i] = src[i] · scale (the float64 product rounded to float32); dst may be src. True when
   * some dst[i] is NaN or |dst[i]| ≥ limit (limit rounded to float32; Infinity: not finite).
   */
  scaleInto(src: Float32Array, dst: Float32Array, scale: number, limit?: number): boolean;
  /** Index of the first NaN or ±Inf in src, or −1. */
  firstNonFinite(src: Float32Array): number;
}

let scratch = new ArrayBuffer(0);

/** `bytes` as a typed array: a view when aligned, else a copy in a reused scratch buffer (consume before returning). */
function aligned<T>(bytes: Uint8Array, align: number, make: (buf: ArrayBuffer, off: number) => T): T {
  if (bytes.byteOffset % align === 0) return make(bytes.buffer as ArrayBuffer, bytes.byteOffset);
  if (scratch.byteLength < bytes.byteLength) scratch = new ArrayBuffer(Math.max(bytes.byteLength, scratch.byteLength * 2));
  new Uint8Array(scratch, 0, bytes.byteLength).set(bytes);
  return make(scratch, 0);
}

function divide(acc: Float32Array, divisor: number): void {
  if (divisor !== 1) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) / divisor;
}

/** x − x is 0 for every finite x and NaN for NaN and ±Inf. */
const nonFinite = (x: number): boolean => x - x !== 0;

/** Whether some value of `a` is NaN or ±Inf. */
function anyNonFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (nonFinite(a[i] as number)) return true;
  return false;
}

/** The limit as the native kernel compares it: rounded to float32, +Inf above the largest float. */
const F32_MAX = 3.4028234663852886e38;
const float32Limit = (limit: number): number => (limit > F32_MAX ? Infinity : Math.fround(limit));

/** The JavaScript kernels (the reference the native ones are tested against). */
export const jsKernels: CodecKernels = {
  name: 'js',
  addF32(src, acc, first, divisor) {
    const n = acc.length;
    const s = aligned(src, 4, (b, o) => new Float32Array(b, o, n));
    const bad = anyNonFinite(s);
    if (first) acc.set(s);
    else if (divisor !== 1) {
      for (let i = 0; i < n; i++) acc[i] = Math.fround((acc[i] as number) + (s[i] as number)) / divisor;
      return bad;
    } else for (let i = 0; i < n; i++) acc[i] = (acc[i] as number) + (s[i] as number);
    divide(acc, divisor);
    return bad;
  },
  signEncode(values, residual, scales, bits, decodedOut) {
    encodeSigns(values, residual, scales, bits, decodedOut ?? undefined);
  },
  signAccumulate(scales, bits, acc, first, divisor) {
    const bad = accumulateSigns(scales, bits, acc.length, acc, first);
    divide(acc, divisor);
    return bad;
  },
  halfEncode(src, dst, decodedOut) {
    const n = src.length;
    const bits = new Uint32Array(src.buffer, src.byteOffset, n);
    const t = halfTable();
    if (dst.byteOffset % 2 === 0) {
      const h16 = new Uint16Array(dst.buffer, dst.byteOffset, n);
      if (decodedOut) {
        for (let i = 0; i < n; i++) {
          const h = floatBitsToHalfBits(bits[i] as number);
          h16[i] = h;
          decodedOut[i] = t[h] as number;
        }
      } else for (let i = 0; i < n; i++) h16[i] = floatBitsToHalfBits(bits[i] as number);
    } else {
      for (let i = 0; i < n; i++) {
        const h = floatBitsToHalfBits(bits[i] as number);
        dst[2 * i] = h & 0xff;
        dst[2 * i + 1] = h >>> 8;
        if (decodedOut) decodedOut[i] = t[h] as number;
      }
    }
  },
  halfAccumulate(src, acc, first, divisor) {
    const n = acc.length;
    const s = aligned(src, 2, (b, o) => new Uint16Array(b, o, n));
    const t = halfTable();
    let bad = false;
    for (let i = 0; i < n; i++) {
      const d = t[s[i] as number] as number;
      if (d - d !== 0) bad = true;
      acc[i] = first ? d : (acc[i] as number) + d;
    }
    divide(acc, divisor);
    return bad;
  },
  scaleInto(src, dst, scale, limit = Infinity) {
    const lim = float32Limit(limit);
    let bad = false;
    for (let i = 0; i < src.length; i++) {
      dst[i] = (src[i] as number) * scale;
      if (!(Math.abs(dst[i] as number) < lim)) bad = true;
    }
    return bad;
  },
  firstNonFinite(src) {
    for (let i = 0; i < src.length; i++) if (nonFinite(src[i] as number)) return i;
    return -1;
  },
};

/** The addon's kernels, or null with the reason. */
export function nativeKernels(): { kernels: CodecKernels; reason: null } | { kernels: null; reason: string } {
  const loaded = loadNativeCodec();
  if (!loaded.codec) return { kernels: null, reason: loaded.reason };
  const c = loaded.codec;
  return {
    kernels: {
      get name() {
        return `native-${c.codecKernel()}`;
      },
      addF32: (src, acc, first, divisor) => c.codecAddF32(src, acc, first, divisor),
      signEncode: (values, residual, scales, bits, decodedOut) => c.codecSignEncode(values, residual, scales, bits, decodedOut),
      signAccumulate: (scales, bits, acc, first, divisor) => c.codecSignAccumulate(scales, bits, acc, first, divisor),
      halfEncode: (src, dst, decodedOut) => c.codecHalfEncode(src, dst, decodedOut),
      halfAccumulate: (src, acc, first, divisor) => c.codecHalfAccumulate(src, acc, first, divisor),
      scaleInto: (src, dst, scale, limit) => c.codecScaleInto(src, dst, scale, limit),
      firstNonFinite: (src) => c.codecFirstNonFinite(src),
    },
    reason: null,
  };
}

let active: CodecKernels | null = null;
let fallbackReason: string | null = null;

/**
 * The kernels in use: the native ones when the addon has them, unless BNN_CODEC_KERNEL=js;
 * else the JavaScript ones (`codecKernelNote()` says why).
 */
export function codecKernels(): CodecKernels {
  if (active) return active;
  if (process.env.BNN_CODEC_KERNEL === 'js') {
    fallbackReason = 'BNN_CODEC_KERNEL=js';
    active = jsKernels;
    return active;
  }
  const n = nativeKernels();
  if (n.kernels) active = n.kernels;
  else {
    fallbackReason = n.reason;
    active = jsKernels;
  }
  return active;
}

/** Why the JavaScript kernels are in use (null when native). */
export function codecKernelNote(): string | null {
  codecKernels();
  return fallbackReason;
}

/** Replaces the kernels in use (tests, benchmarks); returns the previous ones. */
export function setCodecKernels(k: CodecKernels): CodecKernels {
  const prev = codecKernels();
  active = k;
  return prev;
}
