/**
 * Deterministic pseudo-random numbers: xoshiro128** (Blackman & Vigna) on 32-bit
 * integer arithmetic, seeded through splitmix64. Only exact integer operations are
 * used (Math.imul, shifts, BigInt when seeding), so a seed yields the same sequence
 * on every machine and Node version.
 */

const MASK64 = (1n << 64n) - 1n;
const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_53 = 2 ** 53;

/** Complete generator state: four uint32 words, never all zero. Plain numbers, JSON-safe. */
export interface RngState {
  s0: number;
  s1: number;
  s2: number;
  s3: number;
}

/** A writable array-like (plain arrays and typed arrays). */
export interface MutableArrayLike<T> {
  readonly length: number;
  [index: number]: T;
}

/**
 * One splitmix64 step: returns the output for `state` and the next state.
 * Reference: seed 0 gives 0xe220a8397b1dcdaf first.
 */
export function splitmix64(state: bigint): { value: bigint; next: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return { value: z ^ (z >> 31n), next };
}

function checkSeed(seed: number, what: string): bigint {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`${what} must be a safe integer, got ${String(seed)}`);
  }
  return BigInt.asUintN(64, BigInt(seed));
}

function streamKey(stream: number | string): bigint {
  if (typeof stream === 'number') {
    // Tag numbers and strings differently so that 1 and '1' name different streams.
    return checkSeed(stream, 'stream id') ^ 0x6e756d6265720000n;
  }
  // FNV-1a 64 over UTF-8.
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(stream)) {
    h = ((h ^ BigInt(byte)) * 0x100000001b3n) & MASK64;
  }
  return h;
}

/**
 * Derives an independent seed for a named sub-stream, e.g.
 * `deriveSeed(runSeed, 'epoch', 3)` or `deriveSeed(runSeed, 'layer', 'dense_1')`.
 * Deterministic; different stream paths give unrelated seeds. Returns a
 * non-negative safe integer (53 bits), itself usable as a seed.
 */
export function deriveSeed(seed: number, ...streams: Array<number | string>): number {
  let h = splitmix64(checkSeed(seed, 'seed')).value;
  for (const stream of streams) {
    h = splitmix64(h ^ splitmix64(streamKey(stream)).value).value;
  }
  return Number(h >> 11n);
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed`: any safe integer (negative allowed). */
  constructor(seed: number) {
    let sm = checkSeed(seed, 'seed');
    const words: number[] = [];
    while (words.length < 4) {
      const step = splitmix64(sm);
      sm = step.next;
      words.push(Number(step.value & 0xffffffffn), Number(step.value >> 32n));
    }
    this.setState({ s0: words[0]!, s1: words[1]!, s2: words[2]!, s3: words[3]! });
  }

  /** A generator for `deriveSeed(seed, ...streams)`. */
  static derive(seed: number, ...streams: Array<number | string>): Rng {
    return new Rng(deriveSeed(seed, ...streams));
  }

  /** Uniform integer in [0, 2^32). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (consumes two words). */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_POW_53;
  }

  /**
   * Fills `out[i]` with `value` where `nextFloat() < p` and 0 elsewhere, for every i in order:
   * the same draws and result as that loop, with the generator state kept in locals (about 5×
   * faster). Dropout masks use it.
   */
  fillBernoulli(out: Float32Array, p: number, value: number): Float32Array {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let i = 0; i < out.length; i++) {
      // two nextU32() draws, inlined
      let x = Math.imul(s1, 5);
      const hi = (Math.imul((x << 7) | (x >>> 25), 9) >>> 0) >>> 5;
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      x = Math.imul(s1, 5);
      const lo = (Math.imul((x << 7) | (x >>> 25), 9) >>> 0) >>> 6;
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = (hi * 67108864 + lo) / TWO_POW_53 < p ? value : 0;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return out;
  }

  /** Standard normal sample (Box–Muller; one value per call, the sine twin is discarded so state stays four words). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.nextFloat(); // (0, 1]: log is finite
    const u2 = this.nextFloat();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [0, n), without modulo bias. `n` must be an integer in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`int(n): n must be an integer in [1, 2^32], got ${String(n)}`);
    }
    // Accept only draws below the largest multiple of n that fits in 2^32.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates shuffle; returns `arr`. */
  shuffleInPlace<A extends MutableArrayLike<unknown>>(arr: A): A {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  getState(): RngState {
    return { s0: this.s0 >>> 0, s1: this.s1 >>> 0, s2: this.s2 >>> 0, s3: this.s3 >>> 0 };
  }

  setState(state: RngState): void {
    const words = [state.s0, state.s1, state.s2, state.s3];
    for (const [i, w] of words.entries()) {
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32) {
        throw new RangeError(`RngState.s${i} must be a uint32, got ${String(w)}`);
      }
    }
    if (words.every((w) => w === 0)) {
      throw new RangeError('RngState must not be all zero (xoshiro128** would only output zeros)');
    }
    this.s0 = state.s0 | 0;
    this.s1 = state.s1 | 0;
    this.s2 = state.s2 | 0;
    this.s3 = state.s3 | 0;
  }
}
