import type { QuantizerConfig } from './quantizers.js';

export const PRECISIONS = ['fp32', 'int8', 'binary', 'binary-weights', 'xnor', 'rsign'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** How a precision name maps onto quantizers (applied to hidden layers). */
export interface PrecisionPreset {
  kernel: QuantizerConfig;
  /** Input quantizer of every layer after the first (the activation binarizer for binary nets). */
  input: QuantizerConfig;
  /** Float nonlinearity after BatchNorm; binary nets rely on the next layer's sign instead. */
  activation: 'relu' | 'none';
}

export const PRECISION_PRESETS: Record<Precision, PrecisionPreset> = {
  fp32: { kernel: { id: 'identity' }, input: { id: 'identity' }, activation: 'relu' },
  int8: { kernel: { id: 'int8' }, input: { id: 'int8' }, activation: 'relu' },
  binary: { kernel: { id: 'ste_sign' }, input: { id: 'ste_sign' }, activation: 'none' },
  'binary-weights': { kernel: { id: 'ste_sign' }, input: { id: 'identity' }, activation: 'relu' },
  xnor: { kernel: { id: 'xnor' }, input: { id: 'ste_sign' }, activation: 'none' },
  rsign: { kernel: { id: 'ste_sign' }, input: { id: 'rsign' }, activation: 'none' },
};
