import type { NativeAddon } from '../native/addon.js';

/** Process-wide engine state: which backend runs, and the native addon when it is loaded. */
interface EngineState {
  backend: string | null;
  addon: NativeAddon | null;
  threads: number;
  /** Bumped whenever trainable weights change in place; caches of packed/signed weights key on it. */
  weightVersion: number;
  /**
   * Weights known to lie in [−bound, bound], by data id (the optimizer clips latent weights
   * in place). A straight-through mask with threshold ≥ bound is the identity there.
   */
  boundedWeights: WeakMap<object, number>;
}

export const engineState: EngineState = {
  backend: null,
  addon: null,
  threads: 0,
  weightVersion: 0,
  boundedWeights: new WeakMap(),
};

/** True when the current tfjs backend is our `native` backend (fused kernels available). */
export function nativeActive(): boolean {
  return engineState.backend === 'native' && engineState.addon !== null;
}

export function bumpWeightVersion(): void {
  engineState.weightVersion++;
}
