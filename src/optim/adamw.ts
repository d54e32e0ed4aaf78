// AdamW (decoupled weight decay) with two parameter groups and latent-weight clipping.
// On the native backend one fused pass updates the variable's buffer in place.
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { Param } from '../bnn/layers.js';
import { bumpWeightVersion, engineState, nativeActive } from '../engine/state.js';

export interface AdamWOptions {
  /** Learning rate of the fp32 group. */
  lr: number;
  /** Learning rate of binary latent weights (paper Table 1: 1e-2 vs 1e-3). */
  binaryLr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled decay: p ← p − lr·wd·p, for params with `decay`. */
  weightDecay: number;
  /** Clip params with `clip` to [−latentClip, latentClip] after each step; 0 disables. */
  latentClip: number;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  step: number;
  clip: number;
}

/** Reference loop (also the fallback on non-native backends). Same arithmetic as the native kernel. */
export function adamwStepJs(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyper): void {
  const b1 = h.beta1;
  const b2 = h.beta2;
  const c1 = 1 - b1 ** h.step;
  const c2 = 1 - b2 ** h.step;
  const decay = h.lr * h.weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + (1 - b1) * gi;
    const vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let pi = p[i] - decay * p[i] - (h.lr * (mi / c1)) / (Math.sqrt(vi / c2) + h.epsilon);
    if (h.clip > 0) pi = pi > h.clip ? h.clip : pi < -h.clip ? -h.clip : pi;
    p[i] = pi;
  }
}

export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class AdamW {
  private stepCount = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(
    private readonly params: Param[],
    private readonly opts: AdamWOptions,
  ) {
    for (const p of params) {
      this.m.set(p.name, new Float32Array(p.variable.size));
      this.v.set(p.name, new Float32Array(p.variable.size));
    }
    this.markBounds();
  }

  /** Records clipped weights as bounded (their straight-through mask is then the identity). */
  markBounds(): void {
    if (!(this.opts.latentClip > 0)) return;
    for (const p of this.params) {
      if (!p.clip) continue;
      const v = p.variable.dataSync() as Float32Array;
      let max = 0;
      for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]));
      if (max <= this.opts.latentClip) engineState.boundedWeights.set(p.variable.dataId, this.opts.latentClip);
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /** Applies one update. `grads` maps tfjs variable names (`variable.name`) to gradients; `lrFactor` comes from the schedule. */
  apply(grads: tf.NamedTensorMap, lrFactor: number): void {
    this.stepCount++;
    const native = nativeActive();
    const backend = native ? (tf.backend() as MathBackendCPU) : null;
    for (const p of this.params) {
      const grad = grads[p.variable.name];
      if (!grad) continue;
      const h: AdamWHyper = {
        lr: (p.group === 'binary' ? this.opts.binaryLr : this.opts.lr) * lrFactor,
        beta1: this.opts.beta1,
        beta2: this.opts.beta2,
        epsilon: this.opts.epsilon,
        weightDecay: p.decay ? this.opts.weightDecay : 0,
        step: this.stepCount,
        clip: p.clip ? this.opts.latentClip : 0,
      };
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      if (backend && engineState.addon) {
        const values = backend.data.get(p.variable.dataId).values as Float32Array;
        const g = backend.data.get(grad.dataId).values as Float32Array;
        engineState.addon.adamw(values, g, m, v, h);
      } else {
        const values = Float32Array.from(p.variable.dataSync() as Float32Array);
        adamwStepJs(values, grad.dataSync() as Float32Array, m, v, h);
        tf.tidy(() => p.variable.assign(tf.tensor(values, p.variable.shape)));
      }
      if (h.clip > 0) engineState.boundedWeights.set(p.variable.dataId, h.clip);
    }
    bumpWeightVersion();
  }

  state(): AdamWState {
    return { step: this.stepCount, m: Object.fromEntries(this.m), v: Object.fromEntries(this.v) };
  }

  loadState(s: AdamWState): void {
    this.stepCount = s.step;
    this.markBounds();
    for (const [name, arr] of this.m) {
      const sm = s.m[name];
      const sv = s.v[name];
      if (!sm || !sv || sm.length !== arr.length || sv.length !== arr.length) {
        throw new Error(`optimizer state for '${name}' is missing or has the wrong size`);
      }
      arr.set(sm);
      this.v.get(name)!.set(sv);
    }
  }
}
