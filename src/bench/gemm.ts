// XNOR-popcount GEMM vs OpenBLAS sgemm, measured side by side in one process.
// Run it with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (OpenBLAS reads them at load;
// a forced `Haswell` core halves sgemm speed), as `bnn bench` does in its child process.
import { loadNative, packedInt32Length, type NativeAddon } from '../native/addon.js';

export interface GemmShape {
  /** Rows of the activations (batch). */
  m: number;
  /** Inner dimension (input features). */
  k: number;
  /** Output features. */
  n: number;
}

export interface BenchXnorVsSgemmOptions {
  shapes: GemmShape[];
  /** Thread counts to measure each shape at (the addon's pool and OpenBLAS both get it). */
  threads: number[];
  /** Minimum measuring time per timed operation, after one warm-up run (default 500). */
  minTimeMs?: number;
  /** Minimum repetitions per timed operation (default 5). */
  minReps?: number;
  /** The addon to use (default: loadNative()). */
  addon?: NativeAddon;
}

export interface GemmBenchResult {
  shape: GemmShape;
  threads: number;
  /** Median seconds of sgemm C[m][n] = A[m][k]·W[k][n]. */
  sgemmSeconds: number;
  /** Median seconds of xnorGemm on packed A and pre-packed W (weights pack once per step). */
  xnorSeconds: number;
  /** Median seconds to pack the activations A (packRows), reported apart from xnorSeconds. */
  packSeconds: number;
  sgemmGflops: number;
  /** 2·m·k·n / xnorSeconds: the FLOP rate sgemm would need to match. */
  xnorGopsEquivalent: number;
  /** sgemmSeconds / xnorSeconds. */
  ratio: number;
}

function checkPositiveInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`benchXnorVsSgemm: ${what} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Deterministic values in [-1, 1) (xorshift32), so runs compare like for like. */
function fillRandom(a: Float32Array, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}

function medianSeconds(fn: () => void, minTimeMs: number, minReps: number): number {
  fn(); // warm-up: page faults, thread wake-ups, OpenBLAS buffers
  const times: number[] = [];
  let total = 0;
  while (times.length < minReps || total < minTimeMs) {
    const t0 = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    times.push(ms);
    total += ms;
    if (times.length >= 1000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] / 1e3;
}

function requireAddon(): NativeAddon {
  const loaded = loadNative();
  if (!loaded.addon) throw new Error(`benchXnorVsSgemm needs the native addon: ${loaded.reason}`);
  return loaded.addon;
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Times sgemm, activation packing and XNOR GEMM for every shape × thread count (medians
 * after a warm-up). The addon's thread setting is restored afterwards.
 */
export async function benchXnorVsSgemm(options: BenchXnorVsSgemmOptions): Promise<GemmBenchResult[]> {
  const minTimeMs = options.minTimeMs ?? 500;
  if (!(minTimeMs >= 0)) throw new RangeError(`benchXnorVsSgemm: minTimeMs must be >= 0, got ${minTimeMs}`);
  const minReps = checkPositiveInt(options.minReps ?? 5, 'minReps');
  if (options.shapes.length === 0) throw new RangeError('benchXnorVsSgemm: shapes must not be empty');
  options.shapes.forEach((s, i) => {
    for (const d of ['m', 'k', 'n'] as const) checkPositiveInt(s[d], `shapes[${i}].${d}`);
  });
  if (options.threads.length === 0) throw new RangeError('benchXnorVsSgemm: threads must not be empty');
  options.threads.forEach((t, i) => {
    checkPositiveInt(t, `threads[${i}]`);
  });

  const addon = options.addon ?? requireAddon();
  const threadsBefore = addon.info().threads;
  // The baseline is OpenBLAS threading itself (its fastest), not the deterministic tiling
  // training uses.
  const modeBefore = addon.sgemmMode();
  addon.sgemmMode('openblas');
  const results: GemmBenchResult[] = [];
  try {
    for (const shape of options.shapes) {
      const { m, k, n } = shape;
      const a = fillRandom(new Float32Array(m * k), 1);
      const w = fillRandom(new Float32Array(k * n), 2);
      const c = new Float32Array(m * n);
      const aBits = new Int32Array(packedInt32Length(m, k));
      const wBits = new Int32Array(packedInt32Length(n, k));
      addon.packCols(w, k, n, wBits);
      for (const threads of options.threads) {
        addon.setThreads(threads);
        await nextTick();
        const sgemmSeconds = medianSeconds(() => addon.sgemm(false, false, m, n, k, 1, a, w, 0, c), minTimeMs, minReps);
        const packSeconds = medianSeconds(() => addon.packRows(a, m, k, aBits), minTimeMs, minReps);
        const xnorSeconds = medianSeconds(() => addon.xnorGemm(aBits, wBits, m, n, k, c), minTimeMs, minReps);
        const flops = 2 * m * k * n;
        results.push({
          shape: { m, k, n },
          threads,
          sgemmSeconds,
          xnorSeconds,
          packSeconds,
          sgemmGflops: flops / sgemmSeconds / 1e9,
          xnorGopsEquivalent: flops / xnorSeconds / 1e9,
          ratio: sgemmSeconds / xnorSeconds,
        });
      }
    }
  } finally {
    addon.sgemmMode(modeBefore);
    addon.setThreads(threadsBefore);
  }
  return results;
}
