// Loader and types for the native CPU addon (native/build/Release/bnn_native.node).
// loadNative() never throws: without the addon the engine falls back to wasm/cpu and says why.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Kernel variants of the XNOR path, best first; `auto` picks the best the CPU supports. */
export type XnorKernelName = 'avx512' | 'avx2' | 'portable';

export interface NativeInfo {
  /** Addon version (native/src/binding/addon.cc). */
  version: string;
  /** CPU features found by CPUID (and enabled by the OS). */
  isa: {
    avx2: boolean;
    popcnt: boolean;
    avx512f: boolean;
    avx512bw: boolean;
    avx512dq: boolean;
    avx512vl: boolean;
    avx512vpopcntdq: boolean;
  };
  /** XNOR kernel variants this CPU can run, best first. */
  kernels: XnorKernelName[];
  /** The variant in use. */
  kernel: XnorKernelName;
  /** Why it is in use: `auto`, `BNN_XNOR_KERNEL=...`, `forced ...`, or why the env choice was ignored. */
  kernelSelection: string;
  /** Threads of the addon's pool (the calling thread included). */
  threads: number;
  openblasThreads: number;
  /** `openblas_get_config()` plus ` core=<corename>` (e.g. `core=Cooperlake`). */
  openblasConfig: string;
}

/**
 * Conv2D geometry, tfjs' Conv2DInfo in flat form (dilation 1). Layouts: x NHWC
 * [batch][inH][inW][inC]; filter HWIO [kH][kW][inC][outC]; y NHWC [batch][outH][outW][outC].
 * Output (oh, ow) with tap (kh, kw) reads input row oh*strideH + kh - padTop and column
 * ow*strideW + kw - padLeft; anything outside the input is zero. Bottom/right padding is
 * implied by outH/outW (take them and padTop/padLeft from tf.backend_util.computeConv2DInfo).
 */
export interface Conv2DGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  kH: number;
  kW: number;
  outC: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
  outH: number;
  outW: number;
}

/** AdamW hyper-parameters for one fused step. */
export interface AdamWHyperparams {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled weight decay: p ← p − lr·weightDecay·p (default 0). */
  weightDecay?: number;
  /** 1-based number of this step, for the bias corrections 1 − β^step. */
  step: number;
  /** > 0: clip p to [−clip, clip] after the update (default 0 = off). */
  clip?: number;
}

/**
 * The addon's functions. All are synchronous; heavy ones split work over the addon's
 * thread pool (or OpenBLAS's). Outputs are written into caller-provided arrays.
 * Float buffers are Float32Array (subarrays work). Packed sign bits are Int32Array holding
 * little-endian uint64 words (2 int32 per word; byteOffset must be a multiple of 8):
 * a row of k values packs into ceil(k/64) words, bit j of word w = (value[64w + j] < 0),
 * so sign(0) = +1 and bits past k are 0 (native/src/xnor_gemm/reference.h).
 * Every length is checked exactly; a wrong argument throws a TypeError that names it.
 */
export interface NativeAddon {
  info(): NativeInfo;
  /**
   * Forces the XNOR kernel variant (`auto` = best available) and returns the one now in use.
   * Throws a RangeError naming the available variants if `name` is unknown or unsupported.
   * The env var BNN_XNOR_KERNEL (auto|avx512|avx2|portable) sets the initial choice.
   */
  setKernel(name: XnorKernelName | 'auto'): XnorKernelName;
  /** Sets the pool's threads and OpenBLAS's (0 = hardware concurrency); returns the count. */
  setThreads(n: number): number;

  /** Packs `rows` rows of `k` floats (src [rows][k]) into dst [rows][ceil(k/64)] words (Int32Array of 2·rows·ceil(k/64)). */
  packRows(src: Float32Array, rows: number, k: number, dst: Int32Array): void;
  /** Packs the columns of src [k][n] (row-major): dst row c = column c, [n][ceil(k/64)] words. Weights [in][out] → packed [out][in]. */
  packCols(src: Float32Array, k: number, n: number, dst: Int32Array): void;
  /**
   * XNOR-popcount GEMM: c[i][j] = Σ_t sign(A[i][t])·sign(B[j][t]) = k − 2·popcount(a_i ⊕ b_j),
   * exact. a: packed [m][ceil(k/64)], b: packed [n][ceil(k/64)] (packCols of a [k][n] weight),
   * c: Float32Array [m][n]. k < 2^24.
   */
  xnorGemm(a: Int32Array, b: Int32Array, m: number, n: number, k: number, c: Float32Array): void;
  /**
   * Exact 8-bit × binary GEMM (a packed model's first layer on raw pixels):
   * out[i][j] = Σ_t raw[i][t]·s[t][j], s = ±1 from w (bit 1 = −1), as float (exact: |sum| ≤ 255·k < 2^24).
   * raw: Uint8Array [m][k] row-major; w: packed [n][ceil(k/64)] (packCols of a [k][n] weight, the
   * layout xnorGemm takes); out: Float32Array [m][n]. 1 ≤ k ≤ 65793. Splits raw into its 8 bit
   * planes inside the call and sums 2^b·(popcount(plane_b) − 2·popcount(plane_b & w_j));
   * uses the XNOR kernel variant in force (setKernel / BNN_XNOR_KERNEL).
   */
  bitplaneGemm(raw: Uint8Array, m: number, k: number, w: Int32Array, n: number, out: Float32Array): void;
  /**
   * Binary conv2d: out = conv(sign(x), sign(filter)) with zero padding, exactly (padded
   * positions add 0, not ±1). filter: HWIO floats (packed on each call) or their packCols
   * bits (packCols(filter, kH·kW·inC, outC), reusable across calls).
   */
  binaryConv2d(x: Float32Array, filter: Float32Array | Int32Array, geometry: Conv2DGeometry, out: Float32Array): void;

  /**
   * sgemm's threading: 'tiled' (default) runs single-threaded OpenBLAS calls over tiles of C
   * fixed by the shape alone, so results are bit-identical whatever the thread count;
   * 'openblas' makes one call threaded by OpenBLAS (results change with the thread count;
   * the benchmark's baseline). Returns the mode in effect.
   */
  sgemmMode(mode?: 'tiled' | 'openblas'): 'tiled' | 'openblas';
  /**
   * Row-major OpenBLAS sgemm: C[m][n] = alpha·op(A)·op(B) + beta·C, op(A) [m][k] (A stored
   * [k][m] when transA), op(B) [k][n] (B stored [n][k] when transB). beta = 0 ignores C's contents.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    b: Float32Array,
    beta: number,
    c: Float32Array,
  ): void;
  /** tfjs Conv2D (NHWC, HWIO, dilation 1): out [batch][outH][outW][outC] = conv(x, filter). */
  conv2d(x: Float32Array, filter: Float32Array, geometry: Conv2DGeometry, out: Float32Array): void;
  /** tfjs Conv2DBackpropInput: dx [batch][inH][inW][inC] from dy [batch][outH][outW][outC] and the filter. */
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, geometry: Conv2DGeometry, dx: Float32Array): void;
  /** tfjs Conv2DBackpropFilter: dw [kH][kW][inC][outC] from x and dy. */
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, geometry: Conv2DGeometry, dw: Float32Array): void;

  /** dst[i] = src[i] < 0 ? −1 : +1 (sign(0) = +1, NaN → +1, as the packing). dst may be src. */
  signInto(src: Float32Array, dst: Float32Array): void;
  /** Straight-through estimator: dst[i] = |x[i]| ≤ threshold ? grad[i] : 0 (threshold default 1). dst may be grad. */
  steGrad(grad: Float32Array, x: Float32Array, dst: Float32Array, threshold?: number): void;
  /**
   * One AdamW step + clip, in place over p, m, v (same length, no overlap): m ← β1·m + (1−β1)·g;
   * v ← β2·v + (1−β2)·g²; p ← p − lr·wd·p − lr·(m/(1−β1^step)) / (√(v/(1−β2^step)) + ε);
   * then p ← clamp(p, −clip, clip) when clip > 0. Float32 arithmetic. Returns true when some
   * updated p or v is NaN or ±Inf (a NaN or ±Inf gradient value always makes its v so): the
   * test rides along the update's pass.
   */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyperparams): boolean;
  /**
   * BatchNorm training forward over row-major x [rows][channels] (channels innermost: dense
   * [batch][C], or NHWC with rows = N·H·W). Writes y = (x − mean)·invStd·gamma + beta, the
   * batch mean and invStd = 1/√(var + eps) (biased variance). gamma/beta null = 1/0. y may be x.
   * Reductions use fixed chunks, so results do not depend on the thread count.
   */
  batchNormForward(
    x: Float32Array,
    rows: number,
    channels: number,
    gamma: Float32Array | null,
    beta: Float32Array | null,
    eps: number,
    y: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
  ): void;
  /**
   * BatchNorm backward through batch statistics: dbeta = Σ dy, dgamma = Σ dy·x̂,
   * dx = gamma·invStd·(dy − dbeta/rows − x̂·dgamma/rows), x̂ = (x − mean)·invStd, with the
   * mean/invStd the forward returned. dgamma/dbeta may be null. dx may be dy.
   */
  batchNormBackward(
    dy: Float32Array,
    x: Float32Array,
    rows: number,
    channels: number,
    gamma: Float32Array | null,
    mean: Float32Array,
    invStd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array | null,
    dbeta: Float32Array | null,
  ): void;
  /** BatchNorm inference: y[r][c] = x[r][c]·scale[c] + shift[c]. y may be x. */
  batchNormApply(x: Float32Array, rows: number, channels: number, scale: Float32Array, shift: Float32Array, y: Float32Array): void;
}

export type NativeLoad = { addon: NativeAddon; reason: null } | { addon: null; reason: string };

const ADDON_RELATIVE = 'native/build/Release/bnn_native.node';

const REQUIRED_FUNCTIONS: readonly (keyof NativeAddon)[] = [
  'info',
  'setKernel',
  'setThreads',
  'packRows',
  'packCols',
  'xnorGemm',
  'bitplaneGemm',
  'binaryConv2d',
  'sgemm',
  'sgemmMode',
  'conv2d',
  'conv2dBackpropInput',
  'conv2dBackpropFilter',
  'signInto',
  'steGrad',
  'adamw',
  'batchNormForward',
  'batchNormBackward',
  'batchNormApply',
];

let cached: NativeLoad | undefined;

/** The package root: the nearest ancestor of this module holding package.json and native/ (src/ under tsx, dist/src/ after tsc). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = up;
  }
}

/** Absolute path of the addon binary (BNN_NATIVE_ADDON overrides it). */
export function addonPath(): string {
  return process.env.BNN_NATIVE_ADDON ?? path.join(packageRoot(), ADDON_RELATIVE);
}

function notBuiltReason(file: string): string {
  const shown = process.env.BNN_NATIVE_ADDON ? file : ADDON_RELATIVE;
  let why = '';
  try {
    const status = JSON.parse(readFileSync(path.join(packageRoot(), 'native/build/build-status.json'), 'utf8')) as {
      ok?: boolean;
      reason?: string | null;
    };
    if (status.ok === false && status.reason) why = `; last build: ${status.reason}`;
  } catch {
    // no status file: never built
  }
  return `${shown} not found (run npm run build:native)${why}`;
}

/** Whether the addon's AdamW reports non-finite results (an addon built before it returned nothing). */
function reportsNonFinite(addon: NativeAddon): boolean {
  const one = () => new Float32Array(1);
  return typeof addon.adamw(one(), one(), one(), one(), { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, step: 1 }) === 'boolean';
}

/**
 * Loads the addon once per process and caches the outcome. Never throws.
 * Before the first load it sets OPENBLAS_THREAD_TIMEOUT=4 unless already set: OpenBLAS reads
 * it when the addon pulls it in, and by default its idle threads spin for ~2^28 cycles after
 * every sgemm, taking the cores the addon's own pool needs for the XNOR kernels next.
 */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  const file = addonPath();
  if (!existsSync(file)) {
    cached = { addon: null, reason: notBuiltReason(file) };
    return cached;
  }
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  try {
    const require = createRequire(import.meta.url);
    const mod = require(file) as Partial<NativeAddon>;
    const missing: string[] = REQUIRED_FUNCTIONS.filter((name) => typeof mod[name] !== 'function');
    if (missing.length === 0 && !reportsNonFinite(mod as NativeAddon)) missing.push("adamw's non-finite report");
    cached =
      missing.length > 0
        ? { addon: null, reason: `${ADDON_RELATIVE} is out of date (missing ${missing.join(', ')}; run npm run build:native)` }
        : { addon: mod as NativeAddon, reason: null };
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split('\n')[0];
    cached = { addon: null, reason: `${ADDON_RELATIVE} failed to load: ${first}` };
  }
  return cached;
}

/** Int32Array length of `rows` packed rows of `k` bits (2 int32 per 64-bit word). */
export function packedInt32Length(rows: number, k: number): number {
  return rows * Math.ceil(k / 64) * 2;
}

/**
 * The all-reduce wire-format kernels (native/src/codec, see src/collective/codec-kernels.ts for
 * the JavaScript twin they equal bit for bit). Byte buffers may sit at any alignment.
 */
export interface NativeCodec {
  /**
   * acc[i] = first ? src[i] : acc[i] + src[i] (float32; src = 4·acc.length bytes of LE fp32), then
   * acc[i] /= divisor (default 1). Like every decode-and-accumulate kernel here, returns true
   * when a decoded value was NaN or ±Inf.
   */
  codecAddF32(src: Uint8Array, acc: Float32Array, first: boolean, divisor?: number): boolean;
  /**
   * sign-ef encode with error feedback, one scale per block of 256 elements: u = values +
   * residual (−0 → +0); s_b = mean |u| over block b (16 float64 lanes, lane j takes the block's
   * elements i ≡ j mod 16, summed lane 0..15, rounded to fp32) into `scales` (4·⌈n/256⌉ bytes,
   * LE fp32); bits (⌈n/8⌉ bytes) get 1 where u ≥ 0; residual ← u − (±s_b); decodedOut (may be
   * `values`) gets ±s_b.
   */
  codecSignEncode(
    values: Float32Array,
    residual: Float32Array,
    scales: Uint8Array,
    bits: Uint8Array,
    decodedOut?: Float32Array | null,
  ): void;
  /** acc[i] = (first ? 0 : acc[i]) + (bit i ? s_b : −s_b) (first writes), then /= divisor; true when a scale is NaN or ±Inf. */
  codecSignAccumulate(scales: Uint8Array, bits: Uint8Array, acc: Float32Array, first: boolean, divisor?: number): boolean;
  /** IEEE half, round to nearest even, into dst (2·src.length bytes, LE); decodedOut (may be `src`) gets the rounded values. */
  codecHalfEncode(src: Float32Array, dst: Uint8Array, decodedOut?: Float32Array | null): void;
  /** acc[i] = (first ? 0 : acc[i]) + half(src[i]) (first writes), then /= divisor; true when a half is NaN or ±Inf. */
  codecHalfAccumulate(src: Uint8Array, acc: Float32Array, first: boolean, divisor?: number): boolean;
  /**
   * dst[i] = float32(float64(src[i]) · scale), as `dst[i] = src[i] * scale` in JavaScript; dst
   * may be src. Returns true when some dst[i] is NaN or |dst[i]| ≥ limit (compared in float32;
   * default Infinity: some dst[i] is not finite).
   */
  codecScaleInto(src: Float32Array, dst: Float32Array, scale: number, limit?: number): boolean;
  /** Index of the first NaN or ±Inf in src, or −1. */
  codecFirstNonFinite(src: Float32Array): number;
  /** Sets the kernel variant when given (`auto` = best; BNN_CODEC_KERNEL sets the initial one) and returns the one in use. */
  codecKernel(name?: 'auto' | 'avx512' | 'avx2' | 'portable'): 'avx512' | 'avx2' | 'portable';
}

const CODEC_FUNCTIONS: readonly (keyof NativeCodec)[] = [
  'codecAddF32',
  'codecSignEncode',
  'codecSignAccumulate',
  'codecHalfEncode',
  'codecHalfAccumulate',
  'codecScaleInto',
  'codecFirstNonFinite',
  'codecKernel',
];

/**
 * The codec kernels of the addon, or why they are unavailable (no addon, or one built before
 * they existed). Never throws; independent of the engine's REQUIRED_FUNCTIONS.
 */
export function loadNativeCodec(): { codec: NativeCodec; reason: null } | { codec: null; reason: string } {
  const loaded = loadNative();
  if (!loaded.addon) return { codec: null, reason: loaded.reason };
  const mod = loaded.addon as unknown as Partial<NativeCodec>;
  const missing = CODEC_FUNCTIONS.filter((name) => typeof mod[name] !== 'function');
  if (missing.length > 0)
    return { codec: null, reason: `${ADDON_RELATIVE} is out of date (missing ${missing.join(', ')}; run npm run build:native)` };
  return { codec: mod as NativeCodec, reason: null };
}
