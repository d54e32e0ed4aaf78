// Quantizers, larq-style: a forward value and its straight-through gradient defined
// together (one tf.customGrad), plus a small serialisable config.
import * as tf from '@tensorflow/tfjs-core';
import { customOp, signPM1, steMask, steSign } from '../engine/ops.js';
import { UserError } from '../util/errors.js';
import { ownedVariable } from './variables.js';

export const QUANTIZER_IDS = ['identity', 'ste_sign', 'xnor', 'rsign', 'int8'] as const;
export type QuantizerId = (typeof QUANTIZER_IDS)[number];

export interface QuantizerConfig {
  id: QuantizerId;
  /** Straight-through window: gradient passes where |x| <= clip (sign quantizers). */
  clip?: number;
}

/** What a quantizer is applied to: kernels are constant within a step and may be cached. */
export type QuantRole = 'input' | 'kernel';

export interface Quantizer {
  readonly config: QuantizerConfig;
  /** True for quantizers whose output is ±1 (possibly scaled): their layer's weights are binary latents. */
  readonly binary: boolean;
  /** Learnable parameters, if any (rsign thresholds), created by `build`. */
  build?(channels: number, name: string): tf.Variable[];
  apply(x: tf.Tensor, role: QuantRole): tf.Tensor;
}

export class UnknownQuantizerError extends UserError {
  constructor(id: string) {
    super(`unknown quantizer '${id}' (valid: ${QUANTIZER_IDS.join(', ')})`);
    this.name = 'UnknownQuantizerError';
  }
}

class Identity implements Quantizer {
  readonly config: QuantizerConfig = { id: 'identity' };
  readonly binary = false;
  apply(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

class SteSign implements Quantizer {
  readonly binary = true;
  constructor(readonly config: QuantizerConfig) {}
  apply(x: tf.Tensor, role: QuantRole): tf.Tensor {
    return steSign(x, { clip: this.config.clip ?? 1, cache: role === 'kernel' });
  }
}

/**
 * XNOR-Net: sign(w) scaled by the per-output-channel mean |w| (last axis is the output
 * channel). The scale is treated as a constant in the backward pass (larq MagnitudeAwareSign):
 * d/dw = scale · 1[|w| ≤ clip].
 */
class XnorSign implements Quantizer {
  readonly binary = true;
  constructor(readonly config: QuantizerConfig) {}
  apply(x: tf.Tensor): tf.Tensor {
    const clip = this.config.clip ?? 1;
    const f = customOp((w: tf.Tensor, save: tf.GradSaveFunc) => {
      const axes = w.shape.slice(0, -1).map((_, i) => i);
      const scale = tf.tidy(() => tf.mean(tf.abs(w), axes.length ? axes : undefined));
      save([w, scale]);
      const value = tf.tidy(() => tf.mul(signPM1(w), scale));
      return { value, gradFunc: (dy: tf.Tensor, [sw, ss]: tf.Tensor[]) => tf.tidy(() => steMask(tf.mul(dy, ss), sw, clip)) };
    });
    return f(x);
  }
}

/**
 * ReActNet RSign: sign(x − α_c) with a learnable threshold α per channel (last axis).
 * d/dx = dy·1[|x − α| ≤ clip]; d/dα = −Σ d/dx over all but the channel axis.
 */
class RSign implements Quantizer {
  readonly binary = true;
  private threshold: tf.Variable | null = null;
  constructor(readonly config: QuantizerConfig) {}
  build(channels: number, name: string): tf.Variable[] {
    this.threshold = ownedVariable(new Float32Array(channels), [channels], `${name}/rsign_threshold`);
    return [this.threshold];
  }
  apply(x: tf.Tensor): tf.Tensor {
    if (!this.threshold) throw new Error('rsign quantizer used before build()');
    const clip = this.config.clip ?? 1;
    const f = customOp((xx: tf.Tensor, alpha: tf.Tensor, save: tf.GradSaveFunc) => {
      const shifted = tf.sub(xx, alpha);
      save([shifted]);
      return {
        value: tf.tidy(() => signPM1(shifted)),
        gradFunc: (dy: tf.Tensor, [s]: tf.Tensor[]) =>
          tf.tidy(() => {
            const dx = steMask(dy, s, clip);
            const axes = s.shape.slice(0, -1).map((_, i) => i);
            return [dx, tf.neg(tf.sum(dx, axes))];
          }),
      };
    });
    return f(x, this.threshold);
  }
}

/**
 * INT8 fake quantization, symmetric: kernels per output channel (last axis), inputs per
 * tensor, scale = max|x| / 127, q = clamp(round(x / scale), −127, 127) · scale.
 * Straight-through gradient inside the representable range.
 */
class Int8 implements Quantizer {
  readonly binary = false;
  constructor(readonly config: QuantizerConfig) {}
  apply(x: tf.Tensor, role: QuantRole): tf.Tensor {
    const f = customOp((xx: tf.Tensor, save: tf.GradSaveFunc) => {
      save([xx]);
      const value = tf.tidy(() => {
        const axes = role === 'kernel' ? xx.shape.slice(0, -1).map((_, i) => i) : undefined;
        const maxAbs = tf.max(tf.abs(xx), axes?.length ? axes : undefined);
        const scale = tf.div(tf.maximum(maxAbs, 1e-8), 127);
        return tf.mul(tf.clipByValue(tf.round(tf.div(xx, scale)), -127, 127), scale);
      });
      return { value, gradFunc: (dy: tf.Tensor) => dy };
    });
    return f(x);
  }
}

/** Resolves a quantizer by id or config; an unknown id names the valid ones. */
export function getQuantizer(idOrConfig: QuantizerId | QuantizerConfig | string): Quantizer {
  const config: QuantizerConfig = typeof idOrConfig === 'string' ? { id: idOrConfig as QuantizerId } : idOrConfig;
  switch (config.id) {
    case 'identity':
      return new Identity();
    case 'ste_sign':
      return new SteSign(config);
    case 'xnor':
      return new XnorSign(config);
    case 'rsign':
      return new RSign(config);
    case 'int8':
      return new Int8(config);
    default:
      throw new UnknownQuantizerError(String(config.id));
  }
}
