// Custom tfjs kernels of the `native` backend: the binarized and fused paths.
// Each has a composite twin in ops.ts built from stock tfjs ops, used on every other backend.
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from '../native/addon.js';
import type { CudaAddon } from '../native/cuda.js';
import { convGeometry, f32, NATIVE_BACKEND } from './backend-data.js';
import { engineState } from './state.js';
import { allocF32 } from './buffer-pool.js';

type KernelArgs = Parameters<tf.KernelFunc>[0];
type Backend = MathBackendCPU;

export const BNN_SIGN = 'BnnSign';
export const BNN_STE_GRAD = 'BnnSteGrad';
export const BNN_XNOR_MATMUL = 'BnnXnorMatMul';
export const BNN_XNOR_CONV2D = 'BnnXnorConv2D';
export const BNN_BATCHNORM_TRAIN = 'BnnBatchNormTrain';
export const BNN_BATCHNORM_GRAD = 'BnnBatchNormGrad';
export const BNN_RELU = 'BnnRelu';
export const BNN_RELU_GRAD = 'BnnReluGrad';

/**
 * Per-step caches of derived weight forms (±1 floats, packed bits), keyed by the
 * weight's data id. Entries are valid for one engineState.weightVersion: the optimizer
 * bumps it after every in-place update, so a weight is signed/packed once per step.
 */
const signCache = new WeakMap<object, { version: number; values: Float32Array; users: object[] }>();
const packColsCache = new WeakMap<object, { version: number; k: number; n: number; packed: Int32Array }>();

function packedWords(k: number): number {
  return Math.ceil(k / 64);
}

/**
 * sign(w) of a weight for the current weight version, shared by every tensor made from it
 * (`users`: their data ids). A new version re-signs into the same array once no tensor of the
 * old one is alive (the usual case: a training step disposes them before the optimizer runs),
 * instead of a fresh array per step (23 MB for the example MLP, and a GC every step).
 */
function cachedSign(b: Backend, addon: NativeAddon, dataId: object, values: Float32Array): { values: Float32Array; users: object[] } {
  const hit = signCache.get(dataId);
  if (hit && hit.version === engineState.weightVersion && hit.values.length === values.length) return hit;
  const reuse = hit && hit.values.length === values.length && hit.users.every((id) => !b.data.has(id));
  const entry = { version: engineState.weightVersion, values: reuse ? hit.values : new Float32Array(values.length), users: [] };
  addon.signInto(values, entry.values);
  signCache.set(dataId, entry);
  return entry;
}

function cachedPackCols(addon: NativeAddon, dataId: object, values: Float32Array, k: number, n: number): Int32Array {
  const hit = packColsCache.get(dataId);
  if (hit && hit.version === engineState.weightVersion && hit.k === k && hit.n === n) return hit.packed;
  // only ever read inside kernels, never tensor data: a new version repacks in place
  const packed = hit && hit.packed.length === n * packedWords(k) * 2 ? hit.packed : new Int32Array(n * packedWords(k) * 2);
  addon.packCols(values, k, n, packed);
  packColsCache.set(dataId, { version: engineState.weightVersion, k, n, packed });
  return packed;
}

// ---- GPU dispatch (optional bnn_cuda addon) -------------------------------------------------
// select.ts calls setBnnGpu() when the native backend is active and a CUDA device is usable
// (never with BNN_CUDA=0). BnnXnorMatMul then keeps each weight packed on the device under one
// key per data id, repacked once per engineState.weightVersion, and BnnXnorConv2D runs the CUDA
// conv. A GPU failure warns once, turns the GPU path off and the call runs on the CPU kernels.

let gpu: { cuda: CudaAddon; warn?: (message: string) => void } | null = null;
let gpuWeights = new WeakMap<object, { key: number; version: number; k: number; n: number }>();
let nextGpuKey = 1;
/** Frees a weight's device copy once tfjs has dropped its data id. */
const gpuKeyRelease = new FinalizationRegistry<{ cuda: CudaAddon; key: number }>(({ cuda, key }) => {
  try {
    cuda.dropWeights(key);
  } catch {
    // the device is gone; nothing to free
  }
});

/** Routes the XNOR kernels of the native backend to `cuda` (null = CPU kernels, the default). */
export function setBnnGpu(cuda: CudaAddon | null, warn?: (message: string) => void): void {
  if (gpu && gpu.cuda !== cuda) {
    try {
      gpu.cuda.dropWeights();
    } catch {
      // best effort
    }
  }
  gpuWeights = new WeakMap();
  gpu = cuda ? { cuda, warn } : null;
}

/** True while the native backend's XNOR kernels run on the GPU. */
export function bnnGpuActive(): boolean {
  return gpu !== null;
}

/** Runs `fn` on the GPU; on failure turns the GPU path off (one warning) and returns false. */
function onGpu(what: string, fn: (cuda: CudaAddon) => void): boolean {
  const g = gpu;
  if (!g) return false;
  try {
    fn(g.cuda);
    return true;
  } catch (err) {
    setBnnGpu(null);
    const first = String((err as Error)?.message ?? err).split('\n')[0];
    (g.warn ?? console.warn)(`bnn: warning: CUDA ${what} failed (${first}); XNOR kernels fall back to the CPU`);
    return false;
  }
}

function gpuWeightKey(cuda: CudaAddon, dataId: object, values: Float32Array, k: number, n: number): number {
  let hit = gpuWeights.get(dataId);
  if (!hit) {
    hit = { key: nextGpuKey++, version: -1, k: 0, n: 0 };
    gpuWeights.set(dataId, hit);
    gpuKeyRelease.register(dataId, { cuda, key: hit.key });
  }
  if (hit.version !== engineState.weightVersion || hit.k !== k || hit.n !== n) {
    hit.version = -1; // stays stale if packing throws
    cuda.packWeights(hit.key, values, k, n);
    Object.assign(hit, { version: engineState.weightVersion, k, n });
  }
  return hit.key;
}

function registerNativeKernel(kernelName: string, kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): void {
  tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc: kernelFunc as tf.KernelFunc });
}

// The register* functions run once, when the native backend is set up: each kernel closure is
// made there, never per call.
export function registerBnnKernels(addon: NativeAddon): void {
  registerSignKernels(addon);
  registerXnorKernels(addon);
  registerReluKernels();
  registerBatchNormKernels(addon);
}

/** sign(x) (optionally cached per weight version) and its straight-through gradient. */
function registerSignKernels(addon: NativeAddon): void {
  registerNativeKernel(BNN_SIGN, ({ inputs, backend, attrs }) => {
    const b = backend as Backend;
    const { x } = inputs as { x: tf.TensorInfo };
    const xv = f32(b, x);
    if ((attrs as { cache?: boolean }).cache) {
      // Shared read-only array: tfjs never writes into kernel outputs, and only the
      // optimizer mutates weights (after bumping the version, which retires this entry).
      const entry = cachedSign(b, addon, x.dataId, xv);
      const info = b.makeTensorInfo(x.shape, 'float32', entry.values);
      entry.users.push(info.dataId);
      return info;
    }
    const out = allocF32(xv.length);
    addon.signInto(xv, out);
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  registerNativeKernel(BNN_STE_GRAD, ({ inputs, backend, attrs }) => {
    const b = backend as Backend;
    const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    const { threshold } = attrs as { threshold: number };
    const out = allocF32(f32(b, dy).length);
    addon.steGrad(f32(b, dy), f32(b, x), out, threshold);
    return b.makeTensorInfo(dy.shape, 'float32', out);
  });
}

/** XNOR-popcount matmul and conv2d, on the GPU when one is set, else on the CPU kernels. */
function registerXnorKernels(addon: NativeAddon): void {
  registerNativeKernel(BNN_XNOR_MATMUL, ({ inputs, backend }) => {
    const b = backend as Backend;
    const { x, w } = inputs as { x: tf.TensorInfo; w: tf.TensorInfo };
    const [m, k] = x.shape;
    const n = w.shape[1];
    const out = allocF32(m * n);
    const done = onGpu('XNOR matmul', (cuda) => {
      const key = gpuWeightKey(cuda, w.dataId, f32(b, w), k, n);
      cuda.xnorDenseCached(f32(b, x), m, k, key, n, out);
    });
    if (!done) {
      const xp = new Int32Array(m * packedWords(k) * 2);
      addon.packRows(f32(b, x), m, k, xp);
      const wp = cachedPackCols(addon, w.dataId, f32(b, w), k, n);
      addon.xnorGemm(xp, wp, m, n, k, out);
    }
    return b.makeTensorInfo([m, n], 'float32', out);
  });

  registerNativeKernel(BNN_XNOR_CONV2D, ({ inputs, backend, attrs }) => {
    const b = backend as Backend;
    const { x, filter } = inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const { strides, pad } = attrs as { strides: [number, number]; pad: 'same' | 'valid' };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      undefined,
      false,
      'channelsLast',
    );
    const out = allocF32(info.outShape.reduce((p, d) => p * d, 1));
    const geometry = convGeometry(info);
    if (!onGpu('XNOR conv2d', (cuda) => cuda.binaryConv2d(f32(b, x), f32(b, filter), geometry, out))) {
      addon.binaryConv2d(f32(b, x), f32(b, filter), geometry, out);
    }
    return b.makeTensorInfo(info.outShape, 'float32', out);
  });
}

// Plain loops: tfjs' generic unary/binary kernels cost ~10 ns per element here.
function registerReluKernels(): void {
  registerNativeKernel(BNN_RELU, ({ inputs, backend }) => {
    const b = backend as Backend;
    const { x } = inputs as { x: tf.TensorInfo };
    const xv = f32(b, x);
    const out = allocF32(xv.length);
    // not Math.max(x, 0): that is NaN for a NaN input, this gives 0
    for (let i = 0; i < xv.length; i++) out[i] = xv[i] > 0 ? xv[i] : 0;
    return b.makeTensorInfo(x.shape, 'float32', out);
  });

  registerNativeKernel(BNN_RELU_GRAD, ({ inputs, backend }) => {
    const b = backend as Backend;
    const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    const xv = f32(b, x);
    const dv = f32(b, dy);
    const out = allocF32(xv.length);
    for (let i = 0; i < xv.length; i++) out[i] = xv[i] > 0 ? dv[i] : 0;
    return b.makeTensorInfo(x.shape, 'float32', out);
  });
}

/** Training-mode batch norm (batch statistics) and its gradient, fused in the addon. */
function registerBatchNormKernels(addon: NativeAddon): void {
  registerNativeKernel(BNN_BATCHNORM_TRAIN, ({ inputs, backend, attrs }) => {
    const b = backend as Backend;
    const { x, gamma, beta } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
    const { epsilon } = attrs as { epsilon: number };
    const c = x.shape[x.shape.length - 1];
    const xv = f32(b, x);
    const rows = xv.length / c;
    const y = allocF32(xv.length);
    const mean = allocF32(c);
    const invStd = allocF32(c);
    addon.batchNormForward(xv, rows, c, f32(b, gamma), f32(b, beta), epsilon, y, mean, invStd);
    return [b.makeTensorInfo(x.shape, 'float32', y), b.makeTensorInfo([c], 'float32', mean), b.makeTensorInfo([c], 'float32', invStd)];
  });

  registerNativeKernel(BNN_BATCHNORM_GRAD, ({ inputs, backend }) => {
    const b = backend as Backend;
    const { dy, x, gamma, mean, invStd } = inputs as Record<string, tf.TensorInfo>;
    const c = x.shape[x.shape.length - 1];
    const xv = f32(b, x);
    const rows = xv.length / c;
    const dx = allocF32(xv.length);
    const dgamma = allocF32(c);
    const dbeta = allocF32(c);
    addon.batchNormBackward(f32(b, dy), xv, rows, c, f32(b, gamma), f32(b, mean), f32(b, invStd), dx, dgamma, dbeta);
    return [b.makeTensorInfo(x.shape, 'float32', dx), b.makeTensorInfo([c], 'float32', dgamma), b.makeTensorInfo([c], 'float32', dbeta)];
  });
}
