import os from 'node:os';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BackendUnavailableError } from './errors.js';
import { NATIVE_BACKEND } from './backend-data.js';
import { registerNativeBackend } from './native-backend.js';
import { setBnnGpu } from './bnn-kernels.js';
import { engineState } from './state.js';
import { tuneGcForTraining } from './gc.js';

export const BACKENDS = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface EngineOptions {
  /** Backend to use; `auto` takes the best available: tensorflow → native → wasm → cpu. */
  backend: BackendChoice;
  /** Threads for native kernels and OpenBLAS; 0 means one per core. */
  threads: number;
  /** Receives one-line warnings (e.g. why the native backend is unavailable). */
  warn?: (message: string) => void;
}

export interface EngineInfo {
  backend: Exclude<BackendChoice, 'auto'>;
  threads: number;
  /** Why better backends were skipped, one line each. */
  fallbacks: string[];
  /** Native kernel variant and ISA, when the native backend runs. */
  kernel?: string;
  /**
   * The GPU running the native backend's XNOR kernels (bnn_cuda addon), e.g.
   * `NVIDIA H100 80GB HBM3 (cc 9.0, mma XNOR GEMM)`; null when they run on the CPU.
   */
  gpu: string | null;
  /** Why `gpu` is null (one line), when the native backend runs. */
  gpuReason?: string;
}

const require = createRequire(import.meta.url);

async function tryTensorflow(): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
    } catch {
      continue;
    }
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return null;
      return `${pkg} loaded but its backend did not initialise`;
    } catch (err) {
      return `${pkg} failed to load: ${String((err as Error).message).split('\n')[0]}`;
    }
  }
  return 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed';
}

/**
 * Routes the native backend's XNOR kernels to the GPU when the bnn_cuda addon finds a usable
 * device; BNN_CUDA=0 keeps them on the CPU without loading the CUDA addon at all.
 */
async function tryCuda(warn?: (message: string) => void): Promise<{ gpu: string | null; gpuReason?: string }> {
  const { cudaDisabled, usableCuda } = await import('../native/cuda.js');
  if (cudaDisabled()) {
    setBnnGpu(null);
    return { gpu: null, gpuReason: 'disabled by BNN_CUDA=0' };
  }
  const found = usableCuda();
  setBnnGpu(found.cuda, warn);
  return found.cuda ? { gpu: found.gpu } : { gpu: null, gpuReason: found.reason };
}

async function tryNative(threads: number): Promise<{ reason: string | null; kernel?: string }> {
  const { loadNative } = await import('../native/addon.js');
  const loaded = loadNative();
  if (!loaded.addon) return { reason: loaded.reason };
  registerNativeBackend(loaded.addon);
  loaded.addon.setThreads(threads);
  if (!(await tf.setBackend(NATIVE_BACKEND))) return { reason: 'the native backend did not initialise' };
  engineState.addon = loaded.addon;
  return { reason: null, kernel: loaded.addon.info().kernel };
}

async function tryWasm(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) return null;
    return 'the wasm backend did not initialise';
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm failed to load: ${String((err as Error).message).split('\n')[0]}`;
  }
}

/** The cpu backend's first write prints an advert for tfjs-node; our output stays ours. */
function quietCpuBackend(): void {
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
}

/** Picks and activates the tfjs backend. A backend asked for by name that cannot run is an error. */
export async function initEngine(opts: EngineOptions): Promise<EngineInfo> {
  tuneGcForTraining();
  const threads = opts.threads > 0 ? opts.threads : os.availableParallelism();
  const fallbacks: string[] = [];
  const order: Exclude<BackendChoice, 'auto'>[] = opts.backend === 'auto' ? ['tensorflow', 'native', 'wasm', 'cpu'] : [opts.backend];
  for (const name of order) {
    let reason: string | null = null;
    let kernel: string | undefined;
    if (name === 'tensorflow') reason = await tryTensorflow();
    else if (name === 'native') ({ reason, kernel } = await tryNative(threads));
    else if (name === 'wasm') reason = await tryWasm();
    else reason = (await tf.setBackend('cpu')) ? null : 'the cpu backend did not initialise';
    if (reason === null && (name === 'cpu' || name === 'native')) quietCpuBackend();
    if (reason === null) {
      engineState.backend = name;
      engineState.threads = threads;
      if (name !== 'native') engineState.addon = null;
      if (name === 'native') return { backend: name, threads, fallbacks, kernel, ...(await tryCuda(opts.warn)) };
      setBnnGpu(null);
      return { backend: name, threads, fallbacks, kernel, gpu: null };
    }
    if (opts.backend !== 'auto') {
      throw new BackendUnavailableError(
        `backend '${name}' is unavailable: ${reason} ` + `(valid backends: ${BACKENDS.join(', ')}; 'auto' picks the best available)`,
      );
    }
    fallbacks.push(`${name}: ${reason}`);
    // tfjs-node missing is the normal case on CPU hosts; only a broken native build is worth a warning.
    if (name === 'native') opts.warn?.(`bnn: warning: native backend unavailable (${reason}); falling back`);
  }
  throw new Error('unreachable: the cpu backend always initialises');
}
