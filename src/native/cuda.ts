// Loader and types for the optional CUDA addon (native/cuda-addon/build/Release/bnn_cuda.node).
// It is built at install only where nvcc is found (native/cuda-addon/build.mjs; BNN_CUDA=0 skips
// it, BNN_CUDA=1 makes it mandatory). loadCuda() never throws: without the addon, or with it but
// no GPU/driver, the engine keeps the CPU XNOR kernels of bnn_native and says why.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Conv2DGeometry } from './addon.js';
import { packageRoot } from './addon.js';

/** One CUDA device as the addon saw it at its first probe. */
export interface CudaDeviceInfo {
  /** CUDA ordinal (after CUDA_VISIBLE_DEVICES). */
  ordinal: number;
  /** e.g. `NVIDIA H100 80GB HBM3`. */
  name: string;
  /** Compute capability, e.g. 9.0 → ccMajor 9, ccMinor 0. */
  ccMajor: number;
  ccMinor: number;
  /** Streaming multiprocessors. */
  smCount: number;
  /** True when the 1-bit tensor-core GEMM (mma.sync b1, sm_80+) is built for and runs on this device. */
  mmaB1: boolean;
  totalMemBytes: number;
  /** True when this build has kernels for the device. */
  available: boolean;
  /** Why the device is unusable (null when available). */
  reason: string | null;
}

export interface CudaInfo {
  /** True when a device can run the kernels; every compute function needs this. */
  available: boolean;
  /** Why not (e.g. `CUDA driver not found (...)`, `no CUDA device (...)`); null when available. */
  reason: string | null;
  /** Ordinal of the device in use (the first usable one), or null. */
  device: number | null;
  devices: CudaDeviceInfo[];
  /**
   * XNOR GEMM variant AUTO resolved to on the device in use: `mma` (1-bit tensor cores) or `popc`
   * (CUDA cores; taken when the mma self-test fails or popc is >10% faster on a probe). The env var
   * BNN_CUDA_GEMM=mma|popc overrides it. null without a device.
   */
  gemmVariant: 'mma' | 'popc' | null;
  /** Set when resolving the variant failed (the device is then likely unusable). */
  gemmError?: string;
  /** Number of weight matrices held in the device-side cache. */
  cachedWeights: number;
}

/**
 * The addon's functions. All are synchronous and run on the first usable device: host buffers
 * are copied into device buffers (cached and reused between calls), the kernels run, and the
 * result is copied back into the caller's array before the call returns.
 *
 * Bit contract as bnn_native (native/src/xnor_gemm/reference.h): sign(0) = +1, packed rows are
 * ceil(k/64) little-endian uint64 words held in an Int32Array (2 int32 per word, byteOffset a
 * multiple of 8), bit 1 = negative, tail bits 0; results are exact integers in float (k < 2^24).
 *
 * Arguments are checked first, exactly like the CPU binding: a wrong one throws a TypeError that
 * names it (`xnorGemmPacked: argument 'c' must be a Float32Array of length m*n = 6, got ...`).
 * Then a device is needed: without one the call throws an Error with `code`
 * `'BNN_CUDA_UNAVAILABLE'` and the reason of {@link CudaInfo.reason}; it never aborts the process.
 * A CUDA failure during a call throws an Error with code `'BNN_CUDA_ERROR'`. State (buffers,
 * weight cache) is process-wide; calls are serialised by a mutex.
 */
export interface CudaAddon {
  /** Probes the driver and devices on first call (cheap afterwards); never throws for a missing GPU. */
  info(): CudaInfo;
  /**
   * XNOR-popcount GEMM on packed operands: c[i][j] = k − 2·popcount(a_i ⊕ b_j).
   * a: packed [m][ceil(k/64)], b: packed [n][ceil(k/64)] (columns of the right-hand matrix),
   * c: Float32Array [m][n]. 1 ≤ k < 2^24, m ≤ 2^30, n ≤ 65535·128.
   */
  xnorGemmPacked(a: Int32Array, b: Int32Array, m: number, n: number, k: number, c: Float32Array): void;
  /**
   * Binary conv2d: out = conv(sign(x), sign(filter)) with zero padding, exactly (a padded tap adds 0).
   * x NHWC, filter HWIO floats (signs packed on the device each call), out NHWC; geometry as bnn_native.
   */
  binaryConv2d(x: Float32Array, filter: Float32Array, geometry: Conv2DGeometry, out: Float32Array): void;
  /**
   * Device-side weight cache: packs the columns of w [k][n] (row-major, layer weights [in][out])
   * on the device and keeps them, with their popcounts, under `key` (a non-negative integer)
   * until replaced by another packWeights(key, …) or dropped. Buffers of a key are reused when
   * the shape does not grow. On failure the key holds nothing.
   */
  packWeights(key: number, w: Float32Array, k: number, n: number): void;
  /**
   * out[i][j] = Σ_t sign(x[i][t])·sign(W[t][j]) with W the [k][n] weights cached under `key`:
   * packs the activations x [m][k] on the device and multiplies against the cached columns.
   * Throws a RangeError when nothing is cached under key or its shape is not [k][n].
   */
  xnorDenseCached(x: Float32Array, m: number, k: number, key: number, n: number, out: Float32Array): void;
  /** Frees the weights cached under `key` (all of them when omitted); returns how many entries were freed. */
  dropWeights(key?: number): number;
}

export type CudaLoad = { cuda: CudaAddon; reason: string } | { cuda: null; reason: string };

const ADDON_RELATIVE = 'native/cuda-addon/build/Release/bnn_cuda.node';
const STATUS_RELATIVE = 'native/cuda-addon/build/build-status.json';
const REQUIRED_FUNCTIONS: readonly (keyof CudaAddon)[] = [
  'info',
  'xnorGemmPacked',
  'binaryConv2d',
  'packWeights',
  'xnorDenseCached',
  'dropWeights',
];

let cached: CudaLoad | undefined;

/** True when BNN_CUDA disables the GPU kernels (0/off/false/no). */
export function cudaDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['0', 'off', 'false', 'no'].includes((env.BNN_CUDA ?? '').trim().toLowerCase());
}

/** Absolute path of the CUDA addon (BNN_CUDA_ADDON overrides it). */
export function cudaAddonPath(): string {
  return process.env.BNN_CUDA_ADDON ?? path.join(packageRoot(), ADDON_RELATIVE);
}

/** Outcome of the install-time build, native/cuda-addon/build/build-status.json (build.mjs). */
export interface CudaBuildStatus {
  ok?: boolean;
  /** Nothing was attempted (BNN_CUDA=0 or no nvcc). */
  skipped?: boolean;
  noNvcc?: boolean;
  reason?: string | null;
}

/** Why the addon file is missing, from the build status (null: the CUDA step never ran). */
export function cudaNotBuiltReason(status: CudaBuildStatus | null): string {
  if (status && status.ok === false && !status.noNvcc && status.reason) {
    return status.skipped
      ? `bnn_cuda.node not built (${status.reason})`
      : `bnn_cuda.node not built (build failed: ${status.reason}; see native/cuda-addon/build/build.log)`;
  }
  return 'bnn_cuda.node not built (no nvcc at install)';
}

function notBuiltReason(): string {
  if (process.env.BNN_CUDA_ADDON) return `bnn_cuda.node not found at ${process.env.BNN_CUDA_ADDON} (BNN_CUDA_ADDON)`;
  let status: CudaBuildStatus | null = null;
  try {
    status = JSON.parse(readFileSync(path.join(packageRoot(), STATUS_RELATIVE), 'utf8')) as CudaBuildStatus;
  } catch {
    // no status file: the build step never ran the CUDA part
  }
  return cudaNotBuiltReason(status);
}

/** Whether this process has tried to load the CUDA addon (after which CUDA_VISIBLE_DEVICES no longer applies to it). */
export function cudaLoadAttempted(): boolean {
  return cached !== undefined;
}

/**
 * Loads the CUDA addon once per process and caches the outcome. Never throws.
 * `cuda` is null when BNN_CUDA=0, when the addon was not built, or when it fails to load;
 * `reason` says why (empty when loaded). A loaded addon may still have no usable GPU:
 * check `cuda.info().available` before calling its compute functions.
 */
export function loadCuda(): CudaLoad {
  if (cudaDisabled()) return { cuda: null, reason: 'disabled by BNN_CUDA=0' };
  if (cached) return cached;
  const file = cudaAddonPath();
  if (!existsSync(file)) {
    cached = { cuda: null, reason: notBuiltReason() };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    const mod = require(file) as Partial<CudaAddon>;
    const missing = REQUIRED_FUNCTIONS.filter((name) => typeof mod[name] !== 'function');
    cached =
      missing.length > 0
        ? { cuda: null, reason: `bnn_cuda.node is out of date (missing ${missing.join(', ')}; run npm run build:native)` }
        : { cuda: mod as CudaAddon, reason: '' };
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split('\n')[0];
    cached = { cuda: null, reason: `bnn_cuda.node failed to load: ${first}` };
  }
  return cached;
}

/** What the engine uses: the addon when a GPU is usable, else null and one line saying why. */
export function usableCuda(): { cuda: CudaAddon; gpu: string; reason: null } | { cuda: null; gpu: null; reason: string } {
  const { cuda, reason } = loadCuda();
  if (!cuda) return { cuda: null, gpu: null, reason };
  try {
    const info = cuda.info();
    if (!info.available) return { cuda: null, gpu: null, reason: info.reason ?? 'no usable CUDA device' };
    if (info.gemmError) return { cuda: null, gpu: null, reason: `CUDA GEMM unusable: ${info.gemmError}` };
    const dev = info.devices.find((d) => d.ordinal === info.device) ?? info.devices[0];
    const gpu = `${dev?.name ?? 'CUDA device'} (cc ${dev?.ccMajor}.${dev?.ccMinor}, ${info.gemmVariant ?? 'popc'} XNOR GEMM)`;
    return { cuda, gpu, reason: null };
  } catch (err) {
    return { cuda: null, gpu: null, reason: `bnn_cuda info() failed: ${String((err as Error)?.message ?? err).split('\n')[0]}` };
  }
}
