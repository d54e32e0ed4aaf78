// Layers: one quantized base parametrised by its op, plus BatchNorm, activations and pooling.
// With identity quantizers and no constraint a quantized layer equals its float twin exactly.
import * as tf from '@tensorflow/tfjs-core';
import { batchNormTrain, conv2d, customOp, mulConstant, relu as reluOp, xnorConv2d, xnorMatMul, type ConvSpec } from '../engine/ops.js';
import { Rng } from '../util/rng.js';
import { allocF32 } from '../engine/buffer-pool.js';
import { ownedVariable, paramName } from './variables.js';
import { getQuantizer, type Quantizer, type QuantizerConfig } from './quantizers.js';

/** A trainable tensor and how the optimiser treats it. */
export interface Param {
  name: string;
  variable: tf.Variable;
  /** `binary`: latent weights of a binarized kernel (binary learning rate); `fp32`: everything else. */
  group: 'binary' | 'fp32';
  /** Clip to [−latentClip, latentClip] after each update (binary latent weights). */
  clip: boolean;
  /** Decoupled weight decay applies (kernels, not BatchNorm/bias/thresholds). */
  decay: boolean;
}

/** Non-trainable state saved in checkpoints (BatchNorm running statistics). */
export interface Buffer {
  name: string;
  values: Float32Array;
  shape: number[];
}

export interface Layer {
  readonly name: string;
  params(): Param[];
  buffers(): Buffer[];
  apply(x: tf.Tensor, training: boolean): tf.Tensor;
}

/** Glorot-uniform initial values from a deterministic stream. */
export function glorotUniform(shape: number[], fanIn: number, fanOut: number, rng: Rng): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (rng.nextFloat() * 2 - 1) * limit;
  return v;
}

/**
 * Receives a quantized layer's kernel gradient during the backward pass, as soon as it is
 * complete (the rest of the backward pass has not run yet): data-parallel training starts
 * reducing it while the earlier layers' gradients are still being computed, as DDP's
 * bucket hooks do. Runs synchronously inside tfjs' backprop; `grad` is only valid during the call.
 */
export type GradientHook = (variableName: string, grad: tf.Tensor) => void;
let gradientHook: GradientHook | null = null;

/** Runs `f` (a forward and backward pass) with `hook` called for every quantized kernel's gradient. */
export function withGradientHook<T>(hook: GradientHook, f: () => T): T {
  const previous = gradientHook;
  gradientHook = hook;
  try {
    return f();
  } finally {
    gradientHook = previous;
  }
}

/**
 * The kernel as the layer's op sees it: the variable itself, or under a gradient hook an
 * identity op whose gradient reports to the hook. tf.clone shares the variable's data id, so
 * the native backend's per-weight caches (signs, packed bits) still apply.
 */
function hookedKernel(w: tf.Variable): tf.Tensor {
  const hook = gradientHook;
  if (!hook) return w;
  const name = w.name;
  const f = customOp((ww: tf.Tensor) => ({
    value: tf.clone(ww),
    gradFunc: (dy: tf.Tensor) => {
      hook(name, dy);
      return dy;
    },
  }));
  return f(w);
}

export interface QuantLayerOptions {
  inputQuantizer?: QuantizerConfig;
  kernelQuantizer?: QuantizerConfig;
  /** `clip`: latent weights are clipped to [−c, c] after each optimiser step. */
  kernelConstraint?: 'clip' | null;
  useBias?: boolean;
}

/**
 * Base of every quantized layer: kernel (+ bias), an input and a kernel quantizer, and
 * an op. When both quantizers are `ste_sign` the fused XNOR op runs instead of the
 * composition (same values and gradients, much faster on the native backend).
 */
abstract class QuantLayer implements Layer {
  readonly inputQuantizer: Quantizer;
  readonly kernelQuantizer: Quantizer;
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable | null;
  private readonly extra: tf.Variable[] = [];

  constructor(
    readonly name: string,
    kernelShape: number[],
    fanIn: number,
    fanOut: number,
    rng: Rng,
    readonly opts: QuantLayerOptions,
  ) {
    this.inputQuantizer = getQuantizer(opts.inputQuantizer ?? 'identity');
    this.kernelQuantizer = getQuantizer(opts.kernelQuantizer ?? 'identity');
    this.kernel = ownedVariable(glorotUniform(kernelShape, fanIn, fanOut, rng), kernelShape, `${name}/kernel`);
    const outChannels = kernelShape[kernelShape.length - 1];
    this.bias = opts.useBias ? ownedVariable(new Float32Array(outChannels), [outChannels], `${name}/bias`) : null;
    const inChannels = kernelShape[kernelShape.length - 2];
    if (this.inputQuantizer.build) this.extra.push(...this.inputQuantizer.build(inChannels, name));
  }

  get fusedXnor(): boolean {
    return (
      this.inputQuantizer.config.id === 'ste_sign' &&
      this.kernelQuantizer.config.id === 'ste_sign' &&
      (this.inputQuantizer.config.clip ?? 1) === 1 &&
      (this.kernelQuantizer.config.clip ?? 1) === 1
    );
  }

  params(): Param[] {
    const binary = this.kernelQuantizer.binary;
    const out: Param[] = [
      {
        name: paramName(this.kernel),
        variable: this.kernel,
        group: binary ? 'binary' : 'fp32',
        clip: this.opts.kernelConstraint === 'clip',
        decay: true,
      },
    ];
    if (this.bias) out.push({ name: paramName(this.bias), variable: this.bias, group: 'fp32', clip: false, decay: false });
    for (const v of this.extra) out.push({ name: paramName(v), variable: v, group: 'fp32', clip: false, decay: false });
    return out;
  }

  buffers(): Buffer[] {
    return [];
  }

  protected abstract op(x: tf.Tensor, w: tf.Tensor): tf.Tensor;
  protected abstract fused(x: tf.Tensor, w: tf.Tensor): tf.Tensor;

  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const kernel = hookedKernel(this.kernel);
      const y = this.fusedXnor
        ? this.fused(x, kernel)
        : this.op(this.inputQuantizer.apply(x, 'input'), this.kernelQuantizer.apply(kernel, 'kernel'));
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}

export class QuantDense extends QuantLayer {
  constructor(
    name: string,
    inputs: number,
    readonly units: number,
    rng: Rng,
    opts: QuantLayerOptions = {},
  ) {
    super(name, [inputs, units], inputs, units, rng, opts);
  }
  protected op(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
  }
  protected fused(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return xnorMatMul(x as tf.Tensor2D, w as tf.Tensor2D);
  }
}

export class QuantConv2D extends QuantLayer {
  readonly spec: ConvSpec;
  constructor(
    name: string,
    inChannels: number,
    readonly filters: number,
    kernelSize: number,
    rng: Rng,
    opts: QuantLayerOptions & { strides?: number; padding?: 'same' | 'valid' } = {},
  ) {
    const k2 = kernelSize * kernelSize;
    super(name, [kernelSize, kernelSize, inChannels, filters], k2 * inChannels, k2 * filters, rng, opts);
    this.spec = { strides: [opts.strides ?? 1, opts.strides ?? 1], pad: opts.padding ?? 'same' };
  }
  protected op(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return conv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.spec);
  }
  protected fused(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return xnorConv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.spec);
  }
}

/** BatchNorm over the last axis; running statistics as exponential averages (Keras momentum). */
export class BatchNorm implements Layer {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: Float32Array;
  readonly runningVar: Float32Array;

  constructor(
    readonly name: string,
    readonly channels: number,
    readonly momentum = 0.9,
    readonly epsilon = 1e-3,
  ) {
    this.gamma = ownedVariable(new Float32Array(channels).fill(1), [channels], `${name}/gamma`);
    this.beta = ownedVariable(new Float32Array(channels), [channels], `${name}/beta`);
    this.runningMean = new Float32Array(channels);
    this.runningVar = new Float32Array(channels).fill(1);
  }

  params(): Param[] {
    return [
      { name: paramName(this.gamma), variable: this.gamma, group: 'fp32', clip: false, decay: false },
      { name: paramName(this.beta), variable: this.beta, group: 'fp32', clip: false, decay: false },
    ];
  }

  buffers(): Buffer[] {
    return [
      { name: `${this.name}/running_mean`, values: this.runningMean, shape: [this.channels] },
      { name: `${this.name}/running_var`, values: this.runningVar, shape: [this.channels] },
    ];
  }

  apply(x: tf.Tensor, training: boolean): tf.Tensor {
    if (training) {
      return batchNormTrain(x, this.gamma as tf.Tensor1D, this.beta as tf.Tensor1D, this.epsilon, (s) => {
        const m = this.momentum;
        for (let i = 0; i < this.channels; i++) {
          this.runningMean[i] = m * this.runningMean[i] + (1 - m) * s.mean[i];
          this.runningVar[i] = m * this.runningVar[i] + (1 - m) * s.variance[i];
        }
      });
    }
    return tf.tidy(() => {
      const { scale, shift } = this.inferenceAffine();
      return tf.add(tf.mul(x, tf.tensor1d(scale)), tf.tensor1d(shift));
    });
  }

  /** y = x·scale + shift with the running statistics folded in. */
  inferenceAffine(): { scale: Float32Array; shift: Float32Array } {
    const gamma = this.gamma.dataSync() as Float32Array;
    const beta = this.beta.dataSync() as Float32Array;
    const scale = new Float32Array(this.channels);
    const shift = new Float32Array(this.channels);
    for (let i = 0; i < this.channels; i++) {
      scale[i] = gamma[i] / Math.sqrt(this.runningVar[i] + this.epsilon);
      shift[i] = beta[i] - this.runningMean[i] * scale[i];
    }
    return { scale, shift };
  }
}

/**
 * Inverted dropout. Masks are drawn from (seed, layer name, training-forward count), and
 * the count is a buffer, so a resumed run draws the same masks as an uninterrupted one.
 */
export class Dropout implements Layer {
  private readonly count = new Float32Array(1);
  constructor(
    readonly name: string,
    readonly rate: number,
    private readonly seed: number,
  ) {}
  params(): Param[] {
    return [];
  }
  buffers(): Buffer[] {
    return [{ name: `${this.name}/forward_count`, values: this.count, shape: [1] }];
  }
  apply(x: tf.Tensor, training: boolean): tf.Tensor {
    if (!training || this.rate === 0) return x;
    const rng = Rng.derive(this.seed, this.name, this.count[0]++);
    const keep = 1 - this.rate;
    // Each element kept where rng.nextFloat() < keep, in order (fillBernoulli is that loop, faster).
    return mulConstant(x, rng.fillBernoulli(allocF32(x.size), keep, 1 / keep), true);
  }
}

/** Parameter-free layers. */
export class Fn implements Layer {
  constructor(
    readonly name: string,
    private readonly f: (x: tf.Tensor) => tf.Tensor,
  ) {}
  params(): Param[] {
    return [];
  }
  buffers(): Buffer[] {
    return [];
  }
  apply(x: tf.Tensor): tf.Tensor {
    return this.f(x);
  }
}

export const relu = (name: string) => new Fn(name, (x) => reluOp(x));
export const flatten = (name: string) => new Fn(name, (x) => tf.reshape(x, [x.shape[0], -1]));
export const maxPool = (name: string, size = 2) => new Fn(name, (x) => tf.maxPool(x as tf.Tensor4D, size, size, 'valid'));
export const avgPool = (name: string, size = 2) => new Fn(name, (x) => tf.avgPool(x as tf.Tensor4D, size, size, 'valid'));
export const globalAvgPool = (name: string) => new Fn(name, (x) => tf.mean(x, [1, 2]));
