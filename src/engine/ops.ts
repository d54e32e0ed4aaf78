// Binarized and fused ops. On the `native` backend each runs a fused native kernel
// (bnn-kernels.ts); everywhere else it is composed from stock tfjs ops. Both paths give
// the same values (exactly, for the ±1 products) and the same straight-through gradients.
// tfjs-core's node bundle carries no gradient definitions; the union package registers them.
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import {
  BNN_BATCHNORM_GRAD,
  BNN_BATCHNORM_TRAIN,
  BNN_RELU,
  BNN_RELU_GRAD,
  BNN_SIGN,
  BNN_STE_GRAD,
  BNN_XNOR_CONV2D,
  BNN_XNOR_MATMUL,
} from './bnn-kernels.js';
import { engineState, nativeActive } from './state.js';
import { allocF32, releaseF32 } from './buffer-pool.js';

/** Forward value and gradient defined together; tfjs' typing of the variadic callback is too narrow. */
export type GradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
export function customOp<T extends tf.Tensor = tf.Tensor>(
  // biome-ignore lint/suspicious/noExplicitAny: tf.customGrad's own signature takes any[]
  f: (...args: any[]) => { value: T; gradFunc: GradFn },
): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: tf.Tensor[]) => T;
}

function run<T extends tf.Tensor | tf.Tensor[]>(kernel: string, inputs: tf.NamedTensorMap, attrs: object = {}): T {
  return tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as T;
}

/**
 * sign(x) with sign(0) = +1, no gradient of its own. `cache` marks x as a weight that
 * stays constant until the next optimizer step (the native backend signs it once per step).
 */
export function signPM1(x: tf.Tensor, cache = false): tf.Tensor {
  if (nativeActive()) return run(BNN_SIGN, { x }, { cache });
  return tf.tidy(() => tf.sub(tf.mul(tf.cast(tf.greaterEqual(x, 0), 'float32'), 2), 1));
}

/** Straight-through estimator mask: dy where |x| <= threshold, 0 elsewhere (paper A.1). */
export function steMask(dy: tf.Tensor, x: tf.Tensor, threshold = 1): tf.Tensor {
  const bound = engineState.boundedWeights.get(x.dataId);
  if (bound !== undefined && bound <= threshold) return tf.clone(dy);
  if (nativeActive()) return run(BNN_STE_GRAD, { dy, x }, { threshold });
  return tf.tidy(() => tf.mul(dy, tf.cast(tf.lessEqual(tf.abs(x), threshold), 'float32')));
}

/** ste_sign: forward sign(x) (sign(0)=+1), backward dy·1[|x|≤clip]. */
export function steSign(x: tf.Tensor, opts: { clip?: number; cache?: boolean } = {}): tf.Tensor {
  const clip = opts.clip ?? 1;
  const f = customOp((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx]);
    return { value: signPM1(xx, opts.cache), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => steMask(dy, saved[0], clip) };
  });
  return f(x);
}

/**
 * sign(x) · sign(w) for x [M,K] and w [K,N], with straight-through gradients for both
 * (clip 1). The native backend packs both operands and runs the XNOR-popcount GEMM;
 * w's packed form is cached for the current weight version.
 */
export function xnorMatMul(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = customOp((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    const value = nativeActive() ? run<tf.Tensor2D>(BNN_XNOR_MATMUL, { x: xx, w: ww }) : tf.tidy(() => tf.matMul(signPM1(xx), signPM1(ww)));
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) =>
        tf.tidy(() => [steMask(tf.matMul(dy, signPM1(sw, true), false, true), sx), steMask(tf.matMul(signPM1(sx), dy, true, false), sw)]),
    };
  });
  return f(x, w) as tf.Tensor2D;
}

export interface ConvSpec {
  strides: [number, number];
  pad: 'same' | 'valid';
}

function convBackpropInput(dy: tf.Tensor, filter: tf.Tensor, inputShape: number[], spec: ConvSpec): tf.Tensor {
  return run(
    'Conv2DBackpropInput',
    { dy, filter },
    { inputShape, strides: spec.strides, pad: spec.pad, dataFormat: 'NHWC', dimRoundingMode: undefined },
  );
}

function convBackpropFilter(x: tf.Tensor, dy: tf.Tensor, filterShape: number[], spec: ConvSpec): tf.Tensor {
  return run(
    'Conv2DBackpropFilter',
    { x, dy },
    { filterShape, strides: spec.strides, pad: spec.pad, dataFormat: 'NHWC', dimRoundingMode: undefined },
  );
}

/** conv2d(sign x, sign w) (NHWC/HWIO, zero padding) with straight-through gradients. */
export function xnorConv2d(x: tf.Tensor4D, w: tf.Tensor4D, spec: ConvSpec): tf.Tensor4D {
  const f = customOp((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    const value = nativeActive()
      ? run<tf.Tensor4D>(BNN_XNOR_CONV2D, { x: xx, filter: ww }, spec)
      : tf.tidy(() => tf.conv2d(signPM1(xx) as tf.Tensor4D, signPM1(ww) as tf.Tensor4D, spec.strides, spec.pad));
    return {
      value,
      gradFunc: (dy: tf.Tensor, [sx, sw]: tf.Tensor[]) =>
        tf.tidy(() => [
          steMask(convBackpropInput(dy, signPM1(sw, true), sx.shape, spec), sx),
          steMask(convBackpropFilter(signPM1(sx), dy, sw.shape, spec), sw),
        ]),
    };
  });
  return f(x, w) as tf.Tensor4D;
}

/** conv2d through the backend's Conv2D kernel, with gradients through its backprop kernels. */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, spec: ConvSpec): tf.Tensor4D {
  return tf.conv2d(x, w, spec.strides, spec.pad);
}

/** max(x, 0) with gradient dy·1[x > 0] (tfjs' own relu on every backend but native). */
export function relu(x: tf.Tensor): tf.Tensor {
  if (!nativeActive()) return tf.relu(x);
  const f = customOp((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx]);
    return {
      value: run<tf.Tensor>(BNN_RELU, { x: xx }),
      gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => run<tf.Tensor>(BNN_RELU_GRAD, { dy, x: sx }),
    };
  });
  return f(x);
}

/**
 * x · mask for a constant mask of x's size (dropout), with gradient dy · mask. On the native
 * backend both are one loop over the backend's arrays (tfjs' cpu Mul and its gradient cost
 * about 20 ms per 256×2048 step); the products are the same float32 values either way.
 * `releaseMask`: the mask came from allocF32 and goes back to the pool once the gradient has
 * used it (a training step's backward pass runs it exactly once).
 */
export function mulConstant(x: tf.Tensor, mask: Float32Array, releaseMask = false): tf.Tensor {
  if (mask.length !== x.size) throw new Error(`mulConstant: mask has ${mask.length} values, x has ${x.size}`);
  if (!nativeActive()) return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape)));
  const times = (t: tf.Tensor): tf.Tensor => {
    const v = t.dataSync() as Float32Array;
    const out = allocF32(v.length); // recycled when tfjs releases the tensor
    for (let i = 0; i < v.length; i++) out[i] = v[i]! * mask[i]!;
    return tf.tensor(out, t.shape, 'float32');
  };
  let released = false;
  const f = customOp((xx: tf.Tensor) => ({
    value: times(xx),
    gradFunc: (dy: tf.Tensor) => {
      if (released) throw new Error('mulConstant: the mask was already released (one backward pass per forward)');
      const dx = times(dy);
      if (releaseMask) {
        released = true;
        releaseF32(mask);
      }
      return dx;
    },
  }));
  return f(x);
}

/** Batch statistics of one BatchNorm forward, read back for the running averages. */
export interface BatchStats {
  mean: Float32Array;
  variance: Float32Array;
}

/**
 * Training-mode BatchNorm over every axis but the last: y = (x − μ)/√(σ²+ε)·γ + β with
 * biased batch variance. Reports the batch statistics to `onStats`.
 */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
  onStats?: (s: BatchStats) => void,
): tf.Tensor {
  const f = customOp((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    let y: tf.Tensor, mean: tf.Tensor, invStd: tf.Tensor;
    if (nativeActive()) {
      [y, mean, invStd] = run<tf.Tensor[]>(BNN_BATCHNORM_TRAIN, { x: xx, gamma: g, beta: b }, { epsilon });
    } else {
      [y, mean, invStd] = tf.tidy(() => {
        const axes = xx.shape.slice(0, -1).map((_, i) => i);
        const m = tf.mean(xx, axes);
        const v = tf.mean(tf.square(tf.sub(xx, m)), axes);
        const is = tf.rsqrt(tf.add(v, epsilon));
        return [tf.add(tf.mul(tf.mul(tf.sub(xx, m), is), g), b), m, is];
      });
    }
    if (onStats) {
      const is = invStd.dataSync() as Float32Array;
      const variance = new Float32Array(is.length);
      for (let i = 0; i < is.length; i++) variance[i] = 1 / (is[i] * is[i]) - epsilon;
      onStats({ mean: Float32Array.from(mean.dataSync() as Float32Array), variance });
    }
    save([xx, g, mean, invStd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [sx, sg, sm, si]: tf.Tensor[]) => batchNormGrad(dy, sx, sg, sm, si),
    };
  });
  return f(x, gamma, beta);
}

function batchNormGrad(dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor, mean: tf.Tensor, invStd: tf.Tensor): tf.Tensor[] {
  if (nativeActive()) return run<tf.Tensor[]>(BNN_BATCHNORM_GRAD, { dy, x, gamma, mean, invStd });
  return tf.tidy(() => {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const n = x.size / x.shape[x.shape.length - 1];
    const xhat = tf.mul(tf.sub(x, mean), invStd);
    const dbeta = tf.sum(dy, axes);
    const dgamma = tf.sum(tf.mul(dy, xhat), axes);
    const dx = tf.mul(tf.div(tf.mul(gamma, invStd), n), tf.sub(tf.sub(tf.mul(dy, n), dbeta), tf.mul(xhat, dgamma)));
    return [dx, dgamma, dbeta];
  });
}
