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

/**
 * Reference loop (also the fallback on non-native backends). Same arithmetic as the native
 * kernel, and the same report: true when some updated p or v is NaN or ±Inf (a NaN or ±Inf
 * gradient value always makes its v so).
 */
export function adamwStepJs(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyper): boolean {
  const b1 = h.beta1;
  const b2 = h.beta2;
  const c1 = 1 - b1 ** h.step;
  const c2 = 1 - b2 ** h.step;
  const decay = h.lr * h.weightDecay;
  let bad = false;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + (1 - b1) * gi;
    const vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let pi = p[i] - decay * p[i] - (h.lr * (mi / c1)) / (Math.sqrt(vi / c2) + h.epsilon);
    if (h.clip > 0) pi = pi > h.clip ? h.clip : pi < -h.clip ? -h.clip : pi;
    p[i] = pi;
    // x − x is 0 for finite x, NaN otherwise; tested on the stored float32 values
    if ((p[i] as number) - (p[i] as number) !== 0 || (v[i] as number) - (v[i] as number) !== 0) bad = true;
  }
  return bad;
}

/** What went NaN or ±Inf in an update (the first parameter it happened to): see `AdamW.apply`. */
export interface NonFiniteUpdate {
  /** The parameter's name. */
  param: string;
  /** Where: its gradient (came in so), its new value, or its second moment (g² overflowed). */
  what: 'gradient' | 'parameter' | 'second moment';
  value: number;
  index: number;
}

/** Index of the first NaN or ±Inf of `a`, or −1 (the rare path after a report: a plain loop). */
function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if ((a[i] as number) - (a[i] as number) !== 0) return i;
  return -1;
}

/** Which of gradient, parameter and second moment holds the NaN or ±Inf the kernel reported. */
function locate(param: string, g: ArrayLike<number>, p: ArrayLike<number>, v: ArrayLike<number>): NonFiniteUpdate | null {
  for (const [what, a] of [
    ['gradient', g],
    ['parameter', p],
    ['second moment', v],
  ] as const) {
    const index = firstNonFinite(a);
    if (index >= 0) return { param, what, value: a[index] as number, index };
  }
  return null;
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

  /**
   * Applies one update. `grads` maps tfjs variable names (`variable.name`) to gradients;
   * `lrFactor` comes from the schedule. Returns null, or where the update met NaN or ±Inf (a
   * gradient value, or a parameter or second moment the update made so): the fused kernel
   * reports it from its own pass, so a finite step costs nothing more. Such an update has been
   * applied (the weights are lost): the caller ends the run.
   */
  apply(grads: tf.NamedTensorMap, lrFactor: number): NonFiniteUpdate | null {
    this.stepCount++;
    let report: NonFiniteUpdate | null = null;
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
      let bad: boolean;
      let values: Float32Array;
      let g: Float32Array;
      if (backend && engineState.addon) {
        values = backend.data.get(p.variable.dataId).values as Float32Array;
        g = backend.data.get(grad.dataId).values as Float32Array;
        bad = engineState.addon.adamw(values, g, m, v, h);
      } else {
        values = Float32Array.from(p.variable.dataSync() as Float32Array);
        g = grad.dataSync() as Float32Array;
        bad = adamwStepJs(values, g, m, v, h);
        tf.tidy(() => p.variable.assign(tf.tensor(values, p.variable.shape)));
      }
      if (bad) report ??= locate(p.variable.name, g, values, v);
      if (h.clip > 0) engineState.boundedWeights.set(p.variable.dataId, h.clip);
    }
    bumpWeightVersion();
    return report;
  }

  /**
   * Counts a step without applying it (a skipped step, `train.onNonFinite: skip`): parameters
   * and moments stay as they are; the step number (data position, schedule, bias correction)
   * moves on.
   */
  skipStep(): void {
    this.stepCount++;
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
