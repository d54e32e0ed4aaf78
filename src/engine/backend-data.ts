// What the native backend's kernel files share: its name, float32 data of a tensor on it, and
// the addon's conv geometry from tfjs' conv info. A leaf, so native-backend.ts (the stock
// kernels it overrides) and bnn-kernels.ts (the binary kernels it adds) need not import each other.
import type * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

export const NATIVE_BACKEND = 'native';

export function f32(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  const values = backend.data.get(t.dataId).values;
  if (!(values instanceof Float32Array)) {
    throw new Error(`native backend: expected float32 data, got ${t.dtype}`);
  }
  return values;
}

/** The addon's conv geometry (NHWC input, HWIO filter, explicit pads) from tfjs' conv info. */
export function convGeometry(info: tf.backend_util.Conv2DInfo) {
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    outC: info.outChannels,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    outH: info.outHeight,
    outW: info.outWidth,
  };
}
