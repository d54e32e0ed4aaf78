/**
 * 1-bit sign compression with error feedback (the compressor of 1-bit Adam / EF-SignSGD):
 * a chunk v (plus the carried residual e) is sent as sign(v + e) and one scale, mean |v + e|;
 * the residual becomes (v + e) − decoded, so what one step loses the next one sends.
 * Bits are packed 32 elements per little-endian word: bit k of byte j is element 8j+k.
 */

/**
 * Writes sign(values + residual) into the message's bit field (32 elements per little-endian
 * word, so bit k of byte j is element 8j+k) and leaves (values + residual) − decoded in
 * `residual`; returns the scale. −0 counts as +0 (sign(0) = +1).
 */
export function encodeSigns(values: Float32Array, residual: Float32Array, msg: Uint8Array, bitsOffset: number, decodedOut?: Float32Array): number {
  const n = values.length;
  let sumAbs = 0;
  for (let i = 0; i < n; i++) {
    const u = Math.fround((values[i] as number) + (residual[i] as number)) + 0; // + 0 turns −0 into +0
    residual[i] = u;
    sumAbs += Math.abs(u);
  }
  const scale = n === 0 ? 0 : Math.fround(sumAbs / n);
  const pm = new Float32Array([-scale, scale]);
  const signBits = new Int32Array(residual.buffer, residual.byteOffset, n);
  const full = n >>> 5;
  // msg is a fresh buffer and bitsOffset a multiple of 4, so the bit field is 4-byte aligned
  const words = new Uint32Array(msg.buffer, msg.byteOffset + bitsOffset, full);
  // pass 2 reads only `residual`, so `decodedOut` may alias `values`
  if (decodedOut) {
    for (let w = 0; w < full; w++) {
      let word = 0;
      const base = w << 5;
      for (let k = 0; k < 32; k++) {
        const i = base + k;
        const pos = ~(signBits[i] as number) >>> 31;
        word |= pos << k;
        const d = pm[pos] as number;
        residual[i] = (residual[i] as number) - d;
        decodedOut[i] = d;
      }
      words[w] = word;
    }
  } else {
    for (let w = 0; w < full; w++) {
      let word = 0;
      const base = w << 5;
      for (let k = 0; k < 32; k++) {
        const i = base + k;
        const pos = ~(signBits[i] as number) >>> 31;
        word |= pos << k;
        residual[i] = (residual[i] as number) - (pm[pos] as number);
      }
      words[w] = word;
    }
  }
  for (let i = full << 5; i < n; i++) {
    const pos = ~(signBits[i] as number) >>> 31;
    const byte = bitsOffset + (i >>> 3);
    msg[byte] = (msg[byte] as number) | (pos << (i & 7));
    const d = pm[pos] as number;
    residual[i] = (residual[i] as number) - d;
    if (decodedOut) decodedOut[i] = d;
  }
  return scale;
}

/** Adds (or, when `first`, writes) the decoded ±scale values of the bit field at `bitsOffset` into `acc`. */
export function accumulateSigns(msg: Uint8Array, bitsOffset: number, n: number, scale: number, acc: Float32Array, first: boolean): void {
  const pm = new Float32Array([-scale, scale]);
  const full = n >>> 5;
  const off = msg.byteOffset + bitsOffset;
  let words: Uint32Array;
  if (off % 4 === 0) words = new Uint32Array(msg.buffer, off, full);
  else {
    const copy = new Uint8Array(full * 4);
    copy.set(msg.subarray(bitsOffset, bitsOffset + full * 4));
    words = new Uint32Array(copy.buffer);
  }
  if (first) {
    for (let w = 0; w < full; w++) {
      const word = words[w] as number;
      const base = w << 5;
      for (let k = 0; k < 32; k++) acc[base + k] = pm[(word >>> k) & 1] as number;
    }
  } else {
    for (let w = 0; w < full; w++) {
      const word = words[w] as number;
      const base = w << 5;
      for (let k = 0; k < 32; k++) acc[base + k] = (acc[base + k] as number) + (pm[(word >>> k) & 1] as number);
    }
  }
  for (let i = full << 5; i < n; i++) {
    const d = pm[((msg[bitsOffset + (i >>> 3)] as number) >>> (i & 7)) & 1] as number;
    acc[i] = first ? d : (acc[i] as number) + d;
  }
}
