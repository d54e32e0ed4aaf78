/**
 * 1-bit sign compression with error feedback (the compressor of 1-bit Adam / EF-SignSGD):
 * a chunk v (plus the carried residual e) is sent as sign(v + e) and one scale, mean |v + e|;
 * the residual becomes (v + e) − decoded, so what one step loses the next one sends.
 * Bit k of byte j is element 8j+k (1 = non-negative). These are the JavaScript kernels; the
 * native ones (native/src/codec) compute the same bits (see codec-kernels.ts).
 */

/** Partial sums of the scale: lane j adds |u_i| for i ≡ j mod LANES, in float64 (a SIMD-friendly fixed order). */
export const SCALE_LANES = 16;

/** mean |u| as the codec defines it: 16 float64 lane sums, added lane 0..15, divided by n, rounded to float32. */
export function laneMeanAbs(u: ArrayLike<number>): number {
  const n = u.length;
  if (n === 0) return 0;
  const lanes = new Float64Array(SCALE_LANES);
  for (let i = 0; i < n; i++) lanes[i & (SCALE_LANES - 1)] += Math.abs(u[i] as number);
  let s = 0;
  for (let j = 0; j < SCALE_LANES; j++) s += lanes[j] as number;
  return Math.fround(s / n);
}

/**
 * Writes sign(values + residual) into `bits` (⌈n/8⌉ bytes, every byte written) and leaves
 * (values + residual) − decoded in `residual`; returns the scale. −0 counts as +0
 * (sign(0) = +1). `decodedOut` (which may be `values`) receives the decoded ±scale values.
 */
export function encodeSigns(values: Float32Array, residual: Float32Array, bits: Uint8Array, decodedOut?: Float32Array): number {
  const n = values.length;
  const lanes = new Float64Array(SCALE_LANES);
  for (let i = 0; i < n; i++) {
    const u = Math.fround((values[i] as number) + (residual[i] as number)) + 0; // + 0 turns −0 into +0
    residual[i] = u;
    lanes[i & (SCALE_LANES - 1)] += Math.abs(u);
  }
  let sumAbs = 0;
  for (let j = 0; j < SCALE_LANES; j++) sumAbs += lanes[j] as number;
  const scale = n === 0 ? 0 : Math.fround(sumAbs / n);
  const pm = new Float32Array([-scale, scale]);
  const signBits = new Int32Array(residual.buffer, residual.byteOffset, n);
  // pass 2 reads only `residual`, so `decodedOut` may alias `values`
  for (let b = 0; b * 8 < n; b++) {
    const base = b << 3;
    const end = Math.min(base + 8, n);
    let byte = 0;
    for (let i = base; i < end; i++) {
      const pos = ~(signBits[i] as number) >>> 31;
      byte |= pos << (i - base);
      const d = pm[pos] as number;
      residual[i] = (residual[i] as number) - d;
      if (decodedOut) decodedOut[i] = d;
    }
    bits[b] = byte;
  }
  return scale;
}

/** Adds (or, when `first`, writes) the decoded ±scale values of the first `n` bits of `bits` into `acc`. */
export function accumulateSigns(bits: Uint8Array, n: number, scale: number, acc: Float32Array, first: boolean): void {
  const pm = new Float32Array([-scale, scale]);
  for (let b = 0; b * 8 < n; b++) {
    const byte = bits[b] as number;
    const base = b << 3;
    const end = Math.min(base + 8, n);
    if (first) for (let i = base; i < end; i++) acc[i] = pm[(byte >>> (i - base)) & 1] as number;
    else for (let i = base; i < end; i++) acc[i] = (acc[i] as number) + (pm[(byte >>> (i - base)) & 1] as number);
  }
}
