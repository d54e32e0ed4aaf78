/**
 * 1-bit sign compression with error feedback (the compressor of 1-bit Adam / EF-SignSGD):
 * a chunk v (plus the carried residual e) is sent as sign(v + e) and one scale per block of
 * SIGN_BLOCK elements, mean |v + e| over the block; the residual becomes (v + e) − decoded, so
 * what one step loses the next one sends. Bit k of byte j is element 8j+k (1 = non-negative).
 * These are the JavaScript kernels; the native ones (native/src/codec) compute the same bits
 * (see codec-kernels.ts).
 */

/** Elements per scale. */
export const SIGN_BLOCK = 256;
/** Partial sums of a scale: lane j adds |u_i| for the block's i ≡ j mod LANES, in float64 (a SIMD-friendly fixed order). */
export const SCALE_LANES = 16;

/** Scales of a chunk of `n` elements. */
export function signBlocks(n: number): number {
  return Math.ceil(n / SIGN_BLOCK);
}

/** mean |u| as the codec defines it for one block: 16 float64 lane sums, added lane 0..15, divided by n, rounded to float32. */
export function laneMeanAbs(u: ArrayLike<number>): number {
  const n = u.length;
  if (n === 0) return 0;
  const lanes = new Float64Array(SCALE_LANES);
  for (let i = 0; i < n; i++) lanes[i & (SCALE_LANES - 1)] += Math.abs(u[i] as number);
  let s = 0;
  for (let j = 0; j < SCALE_LANES; j++) s += lanes[j] as number;
  return Math.fround(s / n);
}

/** The scale of every block of `u` (the definition, for tests). */
export function blockScales(u: Float32Array): Float32Array {
  const out = new Float32Array(signBlocks(u.length));
  for (let b = 0; b < out.length; b++) out[b] = laneMeanAbs(u.subarray(b * SIGN_BLOCK, (b + 1) * SIGN_BLOCK));
  return out;
}

/**
 * Writes sign(values + residual) into `bits` (⌈n/8⌉ bytes, every byte written), the block
 * scales into `scales` (4·⌈n/256⌉ bytes, little-endian fp32) and leaves (values + residual) −
 * decoded in `residual`. −0 counts as +0 (sign(0) = +1). `decodedOut` (which may be `values`)
 * receives the decoded ±scale values.
 */
export function encodeSigns(
  values: Float32Array,
  residual: Float32Array,
  scales: Uint8Array,
  bits: Uint8Array,
  decodedOut?: Float32Array,
): void {
  const n = values.length;
  const dv = new DataView(scales.buffer, scales.byteOffset, scales.byteLength);
  const lanes = new Float64Array(SCALE_LANES);
  const signBits = new Int32Array(residual.buffer, residual.byteOffset, n);
  const pm = new Float32Array(2);
  for (let b0 = 0, blk = 0; b0 < n; b0 += SIGN_BLOCK, blk++) {
    const end = Math.min(b0 + SIGN_BLOCK, n);
    lanes.fill(0);
    for (let i = b0; i < end; i++) {
      const u = Math.fround((values[i] as number) + (residual[i] as number)) + 0; // + 0 turns −0 into +0
      residual[i] = u;
      lanes[i & (SCALE_LANES - 1)] += Math.abs(u);
    }
    let sumAbs = 0;
    for (let j = 0; j < SCALE_LANES; j++) sumAbs += lanes[j] as number;
    const scale = Math.fround(sumAbs / (end - b0));
    dv.setFloat32(4 * blk, scale, true);
    pm[0] = -scale;
    pm[1] = scale;
    // pass 2 reads only `residual`, so `decodedOut` may alias `values`
    for (let base = b0; base < end; base += 8) {
      const stop = Math.min(base + 8, end);
      let byte = 0;
      for (let i = base; i < stop; i++) {
        const pos = ~(signBits[i] as number) >>> 31;
        byte |= pos << (i - base);
        const d = pm[pos] as number;
        residual[i] = (residual[i] as number) - d;
        if (decodedOut) decodedOut[i] = d;
      }
      bits[base >>> 3] = byte;
    }
  }
}

/** Adds (or, when `first`, writes) the decoded ±scale values of `n` elements into `acc`; true when a scale is NaN or ±Inf. */
export function accumulateSigns(scales: Uint8Array, bits: Uint8Array, n: number, acc: Float32Array, first: boolean): boolean {
  const dv = new DataView(scales.buffer, scales.byteOffset, scales.byteLength);
  const pm = new Float32Array(2);
  let bad = false;
  for (let b0 = 0, blk = 0; b0 < n; b0 += SIGN_BLOCK, blk++) {
    const end = Math.min(b0 + SIGN_BLOCK, n);
    const scale = dv.getFloat32(4 * blk, true);
    if (scale - scale !== 0) bad = true;
    pm[0] = -scale;
    pm[1] = scale;
    for (let base = b0; base < end; base += 8) {
      const byte = bits[base >>> 3] as number;
      const stop = Math.min(base + 8, end);
      if (first) for (let i = base; i < stop; i++) acc[i] = pm[(byte >>> (i - base)) & 1] as number;
      else for (let i = base; i < stop; i++) acc[i] = (acc[i] as number) + (pm[(byte >>> (i - base)) & 1] as number);
    }
  }
  return bad;
}
