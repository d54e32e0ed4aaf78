// Model zoo: mlp, vgg-small and resnet18 (CIFAR-style), each with a width multiplier.
// One definition serves every precision through the quantizer presets.
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  BatchNorm,
  Dropout,
  flatten,
  globalAvgPool,
  maxPool,
  avgPool,
  QuantConv2D,
  QuantDense,
  relu,
  type Buffer,
  type Layer,
  type Param,
} from './layers.js';
import { PRECISION_PRESETS, type Precision } from './precision.js';
import type { QuantizerConfig } from './quantizers.js';

export const ARCHS = ['mlp', 'vgg-small', 'resnet18'] as const;
export type Arch = (typeof ARCHS)[number];

export interface ModelSpec {
  arch: Arch;
  precision: Precision;
  /** mlp hidden layer sizes (before the width multiplier). */
  hidden: number[];
  widthMultiplier: number;
  binarizeFirstLayerInput: boolean;
  binarizeLastLayer: boolean;
  batchNorm: boolean;
  bnMomentum: number;
  bnEpsilon: number;
  /** Dropout rate on the classifier's input during training (0: none). */
  dropout?: number;
  /** Dropout rate on the model's input during training (0: none). */
  inputDropout?: number;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  /** Layers in forward order (residual blocks appear as one layer). */
  readonly layers: Layer[];
  params(): Param[];
  buffers(): Buffer[];
  /** Logits [batch, classes] for NHWC input. */
  forward(x: tf.Tensor, training: boolean): tf.Tensor2D;
  dispose(): void;
}

const IDENTITY: QuantizerConfig = { id: 'identity' };

class Sequential implements Model {
  constructor(
    readonly spec: ModelSpec,
    readonly inputShape: [number, number, number],
    readonly numClasses: number,
    readonly layers: Layer[],
  ) {}
  params(): Param[] {
    return this.layers.flatMap((l) => l.params());
  }
  buffers(): Buffer[] {
    return this.layers.flatMap((l) => l.buffers());
  }
  forward(x: tf.Tensor, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layers) h = l.apply(h, training);
      return h as tf.Tensor2D;
    });
  }
  dispose(): void {
    for (const p of this.params()) p.variable.dispose();
  }
}

function scaled(n: number, w: number): number {
  return Math.max(1, Math.round(n * w));
}

/** Shared wiring of hidden blocks: quantized op → BatchNorm → float activation (if any). */
class Builder {
  readonly preset;
  readonly layers: Layer[] = [];
  private index = 0;
  constructor(
    readonly spec: ModelSpec,
    readonly rng: Rng,
    readonly seed: number,
  ) {
    this.preset = PRECISION_PRESETS[spec.precision];
  }
  name(kind: string): string {
    return `${kind}_${this.index++}`;
  }
  inputQuantizer(first: boolean): QuantizerConfig {
    return first && !this.spec.binarizeFirstLayerInput ? IDENTITY : this.preset.input;
  }
  norm(channels: number): Layer[] {
    const out: Layer[] = [];
    if (this.spec.batchNorm) out.push(new BatchNorm(this.name('bn'), channels, this.spec.bnMomentum, this.spec.bnEpsilon));
    if (this.preset.activation === 'relu') out.push(relu(this.name('relu')));
    return out;
  }
  head(inputs: number, classes: number): Layer[] {
    const last = this.spec.binarizeLastLayer;
    const drop = this.spec.dropout ? [new Dropout(this.name('dropout'), this.spec.dropout, this.seed)] : [];
    return [
      ...drop,
      new QuantDense(this.name('dense'), inputs, classes, this.rng, {
        inputQuantizer: last ? this.preset.input : IDENTITY,
        kernelQuantizer: last ? this.preset.kernel : IDENTITY,
        kernelConstraint: last && this.preset.kernel.id !== 'identity' ? 'clip' : null,
        useBias: true,
      }),
    ];
  }
  /** Dropout on the model's input, when asked for (no layer otherwise, so layer names stay put). */
  inputDrop(): Layer[] {
    return this.spec.inputDropout ? [new Dropout(this.name('input_dropout'), this.spec.inputDropout, this.seed)] : [];
  }
  constraint(): 'clip' | null {
    return this.preset.kernel.id === 'identity' || this.preset.kernel.id === 'int8' ? null : 'clip';
  }
}

function buildMlp(spec: ModelSpec, inputShape: [number, number, number], classes: number, rng: Rng, seed: number): Model {
  const b = new Builder(spec, rng, seed);
  b.layers.push(flatten(b.name('flatten')));
  b.layers.push(...b.inputDrop());
  let inputs = inputShape[0] * inputShape[1] * inputShape[2];
  spec.hidden.forEach((h0, i) => {
    const h = scaled(h0, spec.widthMultiplier);
    b.layers.push(
      new QuantDense(b.name('dense'), inputs, h, rng, {
        inputQuantizer: b.inputQuantizer(i === 0),
        kernelQuantizer: b.preset.kernel,
        kernelConstraint: b.constraint(),
        useBias: !spec.batchNorm,
      }),
    );
    b.layers.push(...b.norm(h));
    inputs = h;
  });
  b.layers.push(...b.head(inputs, classes));
  return new Sequential(spec, inputShape, classes, b.layers);
}

/** VGG-small (LQ-Nets / larq zoo): 2×128, 2×256, 2×512 conv3×3 with a pool after each pair. */
function buildVggSmall(spec: ModelSpec, inputShape: [number, number, number], classes: number, rng: Rng, seed: number): Model {
  const b = new Builder(spec, rng, seed);
  b.layers.push(...b.inputDrop());
  let channels = inputShape[2];
  let h = inputShape[0];
  let w = inputShape[1];
  let first = true;
  for (const width of [128, 128, 256, 256, 512, 512].map((c) => scaled(c, spec.widthMultiplier))) {
    b.layers.push(
      new QuantConv2D(b.name('conv'), channels, width, 3, rng, {
        inputQuantizer: b.inputQuantizer(first),
        kernelQuantizer: b.preset.kernel,
        kernelConstraint: b.constraint(),
        useBias: !spec.batchNorm,
      }),
    );
    const pool = b.layers.filter((l) => l instanceof QuantConv2D).length % 2 === 0 && h >= 2 && w >= 2;
    if (pool) {
      b.layers.push(maxPool(b.name('pool')));
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
    b.layers.push(...b.norm(width));
    channels = width;
    first = false;
  }
  b.layers.push(flatten(b.name('flatten')));
  b.layers.push(...b.head(h * w * channels, classes));
  return new Sequential(spec, inputShape, classes, b.layers);
}

/**
 * Bi-Real-style basic block: every 3×3 conv has its own shortcut,
 * y1 = act(BN(conv(q(x))) + sc(x)), y2 = act(BN(conv(q(y1))) + y1).
 * The downsampling shortcut is avg-pool + full-precision 1×1 conv + BN.
 */
class ResidualBlock implements Layer {
  private readonly conv1: QuantConv2D;
  private readonly norm1: Layer[];
  private readonly conv2: QuantConv2D;
  private readonly norm2: Layer[];
  private readonly shortcut: Layer[];
  private readonly act: Layer[];

  constructor(
    readonly name: string,
    b: Builder,
    inC: number,
    outC: number,
    stride: number,
  ) {
    const opts = { inputQuantizer: b.preset.input, kernelQuantizer: b.preset.kernel, kernelConstraint: b.constraint(), useBias: false };
    this.conv1 = new QuantConv2D(`${name}/conv1`, inC, outC, 3, b.rng, { ...opts, strides: stride });
    this.norm1 = b.spec.batchNorm ? [new BatchNorm(`${name}/bn1`, outC, b.spec.bnMomentum, b.spec.bnEpsilon)] : [];
    this.conv2 = new QuantConv2D(`${name}/conv2`, outC, outC, 3, b.rng, opts);
    this.norm2 = b.spec.batchNorm ? [new BatchNorm(`${name}/bn2`, outC, b.spec.bnMomentum, b.spec.bnEpsilon)] : [];
    this.shortcut = [];
    if (stride !== 1 || inC !== outC) {
      if (stride !== 1) this.shortcut.push(avgPool(`${name}/sc_pool`, stride));
      this.shortcut.push(new QuantConv2D(`${name}/sc_conv`, inC, outC, 1, b.rng, { useBias: !b.spec.batchNorm }));
      if (b.spec.batchNorm) this.shortcut.push(new BatchNorm(`${name}/sc_bn`, outC, b.spec.bnMomentum, b.spec.bnEpsilon));
    }
    this.act = b.preset.activation === 'relu' ? [relu(`${name}/relu`)] : [];
  }

  private parts(): Layer[] {
    return [this.conv1, ...this.norm1, this.conv2, ...this.norm2, ...this.shortcut];
  }
  params(): Param[] {
    return this.parts().flatMap((l) => l.params());
  }
  buffers(): Buffer[] {
    return this.parts().flatMap((l) => l.buffers());
  }
  apply(x: tf.Tensor, training: boolean): tf.Tensor {
    return tf.tidy(() => {
      const seq = (layers: Layer[], h: tf.Tensor) => layers.reduce((acc, l) => l.apply(acc, training), h);
      const sc = seq(this.shortcut, x);
      const y1 = seq(this.act, tf.add(seq(this.norm1, this.conv1.apply(x)), sc));
      return seq(this.act, tf.add(seq(this.norm2, this.conv2.apply(y1)), y1));
    });
  }
}

/** ResNet-18 for 32×32 inputs: 3×3 stem, four stages of two basic blocks, global average pool. */
function buildResnet18(spec: ModelSpec, inputShape: [number, number, number], classes: number, rng: Rng, seed: number): Model {
  const b = new Builder(spec, rng, seed);
  const widths = [64, 128, 256, 512].map((c) => scaled(c, spec.widthMultiplier));
  b.layers.push(...b.inputDrop());
  b.layers.push(
    new QuantConv2D(b.name('stem'), inputShape[2], widths[0], 3, rng, {
      inputQuantizer: b.inputQuantizer(true),
      kernelQuantizer: IDENTITY,
      useBias: !spec.batchNorm,
    }),
  );
  b.layers.push(...b.norm(widths[0]));
  let c = widths[0];
  widths.forEach((wd, stage) => {
    for (let i = 0; i < 2; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      b.layers.push(new ResidualBlock(b.name(`block${stage + 1}`), b, c, wd, stride));
      c = wd;
    }
  });
  b.layers.push(globalAvgPool(b.name('gap')));
  b.layers.push(...b.head(c, classes));
  return new Sequential(spec, inputShape, classes, b.layers);
}

export class ModelSpecError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'ModelSpecError';
  }
}

/** Builds a model with deterministic initial weights from `seed`. */
export function buildModel(spec: ModelSpec, inputShape: [number, number, number], numClasses: number, seed: number): Model {
  const rng = Rng.derive(seed, 'model-init');
  switch (spec.arch) {
    case 'mlp':
      if (spec.hidden.length === 0) throw new ModelSpecError('model.hidden: mlp needs at least one hidden layer');
      return buildMlp(spec, inputShape, numClasses, rng, seed);
    case 'vgg-small':
      return buildVggSmall(spec, inputShape, numClasses, rng, seed);
    case 'resnet18':
      return buildResnet18(spec, inputShape, numClasses, rng, seed);
    default:
      throw new ModelSpecError(`unknown model.arch '${String(spec.arch)}' (valid: ${ARCHS.join(', ')})`);
  }
}

/** Bytes of every parameter and buffer stored as FP32. */
export function fp32SizeBytes(model: Model): number {
  return 4 * (model.params().reduce((s, p) => s + p.variable.size, 0) + model.buffers().reduce((s, b) => s + b.values.length, 0));
}
