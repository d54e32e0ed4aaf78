// The `native` tfjs backend: tfjs' CPU backend with its heavy kernels replaced by the
// native addon (OpenBLAS sgemm, im2col convolutions, XNOR-popcount kernels, fused
// element-wise passes). Registered under its own name by copying the cpu kernel registry
// and overriding entries, so every op tfjs has keeps working.
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from '../native/addon.js';
import { registerBnnKernels } from './bnn-kernels.js';
import { allocF32, releaseF32 } from './buffer-pool.js';
import { convGeometry, f32, NATIVE_BACKEND } from './backend-data.js';

type KernelArgs = Parameters<tf.KernelFunc>[0];
type CpuBackend = MathBackendCPU;

function sizeOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function makeBatchMatMul(addon: NativeAddon) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as CpuBackend;
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== kb) {
      throw new Error(
        `matMul: inner dimensions ${k} and ${kb} of shapes [${a.shape}] and [${b.shape}] ` +
          `(transposeA=${transposeA}, transposeB=${transposeB}) must match`,
      );
    }
    const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batchA = sizeOf(a.shape.slice(0, -2));
    const batchB = sizeOf(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    if (batch !== sizeOf(outer) || (batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) {
      return cpuKernel('BatchMatMul')(args) as tf.TensorInfo;
    }
    const av = f32(backend, a);
    const bv = f32(backend, b);
    const out = allocF32(batch * m * n);
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? av : av.subarray(i * m * k, (i + 1) * m * k);
      const bi = batchB === 1 ? bv : bv.subarray(i * k * n, (i + 1) * k * n);
      const ci = batch === 1 ? out : out.subarray(i * m * n, (i + 1) * m * n);
      addon.sgemm(transposeA, transposeB, m, n, k, 1, ai, bi, 0, ci);
    }
    return backend.makeTensorInfo([...outer, m, n], 'float32', out);
  };
}

function makeFusedMatMul(addon: NativeAddon) {
  const batchMatMul = makeBatchMatMul(addon);
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as CpuBackend;
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { activation } = args.attrs as { activation: string };
    if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) {
      return cpuKernel('_FusedMatMul')(args) as tf.TensorInfo;
    }
    const y = batchMatMul({ ...args, inputs: { a: a!, b: b! } });
    const yv = f32(backend, y);
    const n = y.shape[y.shape.length - 1];
    if (bias) {
      const bv = f32(backend, bias);
      if (bv.length !== 1 && bv.length !== n) {
        backend.disposeData(y.dataId);
        return cpuKernel('_FusedMatMul')(args) as tf.TensorInfo;
      }
      if (bv.length === 1) for (let i = 0; i < yv.length; i++) yv[i] += bv[0];
      else for (let i = 0; i < yv.length; i += n) for (let j = 0; j < n; j++) yv[i + j] += bv[j];
    }
    if (activation === 'relu') for (let i = 0; i < yv.length; i++) if (yv[i] < 0) yv[i] = 0;
    return y;
  };
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function plainConv(info: tf.backend_util.Conv2DInfo, dataFormat: string): boolean {
  return dataFormat !== 'NCHW' && info.dilationHeight === 1 && info.dilationWidth === 1;
}

type Shape4 = [number, number, number, number];

/**
 * One convolution kernel (forward or a gradient): geometry from tfjs' own conv info, the
 * addon call on NHWC/HWIO buffers, and the cpu kernel for what the addon does not cover
 * (NCHW, dilation).
 */
function makeConvKernel(
  name: 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter',
  shapes: (inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>) => { x: Shape4; filter: Shape4 },
  outShape: (info: tf.backend_util.Conv2DInfo) => number[],
  call: (a: Float32Array, b: Float32Array, geometry: ReturnType<typeof convGeometry>, out: Float32Array) => void,
  operands: [string, string],
) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as CpuBackend;
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const at = args.attrs as unknown as ConvAttrs;
    const { x, filter } = shapes(inputs, args.attrs as Record<string, unknown>);
    const info = tf.backend_util.computeConv2DInfo(
      x,
      filter,
      at.strides,
      at.dilations ?? 1,
      at.pad,
      at.dimRoundingMode,
      false,
      'channelsLast',
    );
    if (!plainConv(info, at.dataFormat)) return cpuKernel(name)(args) as tf.TensorInfo;
    const shape = outShape(info);
    const out = allocF32(sizeOf(shape));
    call(f32(backend, inputs[operands[0]]), f32(backend, inputs[operands[1]]), convGeometry(info), out);
    return backend.makeTensorInfo(shape, 'float32', out);
  };
}

function convKernels(addon: NativeAddon): Record<string, tf.KernelFunc> {
  return {
    Conv2D: makeConvKernel(
      'Conv2D',
      (i) => ({ x: i.x.shape as Shape4, filter: i.filter.shape as Shape4 }),
      (info) => info.outShape,
      (a, b, g, o) => addon.conv2d(a, b, g, o),
      ['x', 'filter'],
    ) as tf.KernelFunc,
    Conv2DBackpropInput: makeConvKernel(
      'Conv2DBackpropInput',
      (i, at) => ({ x: at.inputShape as Shape4, filter: i.filter.shape as Shape4 }),
      (info) => info.inShape,
      (a, b, g, o) => addon.conv2dBackpropInput(a, b, g, o),
      ['dy', 'filter'],
    ) as tf.KernelFunc,
    Conv2DBackpropFilter: makeConvKernel(
      'Conv2DBackpropFilter',
      (i, at) => ({ x: i.x.shape as Shape4, filter: at.filterShape as Shape4 }),
      (info) => info.filterShape,
      (a, b, g, o) => addon.conv2dBackpropFilter(a, b, g, o),
      ['x', 'dy'],
    ) as tf.KernelFunc,
  };
}

function cpuKernel(name: string): tf.KernelFunc {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`native backend: tfjs cpu kernel ${name} is not registered`);
  return k.kernelFunc;
}

/** tfjs' CPU backend that hands released kernel outputs back to the buffer pool. */
class NativeCpuBackend extends MathBackendCPU {
  constructor() {
    super();
    // The cpu backend's first write prints an advert for tfjs-node; our output stays ours.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && values) releaseF32(values);
    return released;
  }
}

let registered = false;

/** Registers the `native` backend (idempotent). Requires the cpu backend's kernels to be registered. */
export function registerNativeBackend(addon: NativeAddon, priority = 3): void {
  if (registered) return;
  registered = true;
  tf.registerBackend(NATIVE_BACKEND, () => new NativeCpuBackend(), priority);
  const overrides: Record<string, tf.KernelFunc> = {
    BatchMatMul: makeBatchMatMul(addon) as tf.KernelFunc,
    _FusedMatMul: makeFusedMatMul(addon) as tf.KernelFunc,
    ...convKernels(addon),
  };
  for (const config of tf.getKernelsForBackend('cpu')) {
    tf.registerKernel({ ...config, backendName: NATIVE_BACKEND, kernelFunc: overrides[config.kernelName] ?? config.kernelFunc });
  }
  registerBnnKernels(addon);
}
