/**
 * IEEE 754 binary16 conversion. float32 → half rounds to nearest, ties to even (the
 * algorithm of numpy's `npy_floatbits_to_halfbits`); overflow gives ±Inf, NaN stays NaN.
 * half → float32 is exact (a 64 Ki-entry table).
 */

/** Half bits of the float32 whose bit pattern is `f` (an unsigned 32-bit integer). */
export function floatBitsToHalfBits(f: number): number {
  const hSgn = (f >>> 16) & 0x8000;
  const fExp = f & 0x7f800000;
  if (fExp >= 0x47800000) {
    if (fExp === 0x7f800000) {
      const fSig = f & 0x007fffff;
      if (fSig !== 0) {
        let ret = 0x7c00 + (fSig >>> 13);
        if (ret === 0x7c00) ret++;
        return hSgn + ret;
      }
    }
    return hSgn + 0x7c00;
  }
  if (fExp <= 0x38000000) {
    if (fExp < 0x33000000) return hSgn;
    const e = fExp >>> 23;
    let fSig = 0x00800000 + (f & 0x007fffff);
    fSig >>>= 113 - e;
    // ties to even: the shift may have dropped up to 11 bits, so look at them in the original
    if ((fSig & 0x00003fff) !== 0x00001000 || (f & 0x000007ff) !== 0) fSig += 0x00001000;
    return hSgn + (fSig >>> 13);
  }
  const hExp = (fExp - 0x38000000) >>> 13;
  let fSig = f & 0x007fffff;
  if ((fSig & 0x00003fff) !== 0x00001000) fSig += 0x00001000;
  // a carry out of the significand correctly bumps the exponent (up to Inf)
  return hSgn + hExp + (fSig >>> 13);
}

let table: Float32Array | null = null;

/** float32 value of every half bit pattern. */
export function halfTable(): Float32Array {
  if (table) return table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m === 0 ? Infinity : NaN;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    t[h] = sign * v;
  }
  table = t;
  return t;
}

export function halfBitsToFloat(h: number): number {
  return halfTable()[h & 0xffff] as number;
}

/** Rounds every element of `src` to half precision into `dst` (same length). */
export function encodeHalf(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = floatBitsToHalfBits(bits[i] as number);
}
