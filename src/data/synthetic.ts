/**
 * A generated classification problem for fast tests: each class has a random uint8
 * prototype image; a sample is its class prototype plus independent Gaussian pixel
 * noise, clamped to 0..255. Class means are separable, so a linear model or a small MLP
 * learns it far above chance. Fully determined by the options (seed included).
 */
import { Rng, deriveSeed } from '../util/rng.js';
import { DataOptionError } from './errors.js';
import type { Dataset, Split } from './types.js';

export interface SyntheticOptions {
  /** Image shape [height, width, channels]. */
  shape: [h: number, w: number, c: number];
  /** Number of classes, 2..256. */
  numClasses: number;
  /** Training samples; classes are balanced (counts differ by at most 1). */
  trainSize: number;
  /** Test samples, balanced likewise. */
  testSize: number;
  /** Per-pixel Gaussian noise standard deviation as a fraction of the 0..255 range. */
  noiseStd: number;
  /** Seed (safe integer); prototypes, train and test use derived streams. */
  seed: number;
}

export function defaultSyntheticOptions(): SyntheticOptions {
  return { shape: [8, 8, 1], numClasses: 4, trainSize: 512, testSize: 256, noiseStd: 0.5, seed: 0 };
}

function checkInt(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DataOptionError(
      `dataset.${name}`,
      `synthetic dataset: ${name} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`,
    );
  }
}

/** Fills defaults and validates; throws DataOptionError naming the field. */
export function parseSyntheticOptions(partial: Partial<SyntheticOptions> = {}): SyntheticOptions {
  const d = defaultSyntheticOptions();
  const o: SyntheticOptions = {
    shape: partial.shape ?? d.shape,
    numClasses: partial.numClasses ?? d.numClasses,
    trainSize: partial.trainSize ?? d.trainSize,
    testSize: partial.testSize ?? d.testSize,
    noiseStd: partial.noiseStd ?? d.noiseStd,
    seed: partial.seed ?? d.seed,
  };
  if (!Array.isArray(o.shape) || o.shape.length !== 3) {
    throw new DataOptionError(
      'dataset.shape',
      `synthetic dataset: shape must be [height, width, channels], got ${JSON.stringify(o.shape)}`,
    );
  }
  o.shape.forEach((d, i) => {
    checkInt(`shape[${i}]`, d, 1, 4096);
  });
  checkInt('numClasses', o.numClasses, 2, 256);
  checkInt('trainSize', o.trainSize, 1, 10_000_000);
  checkInt('testSize', o.testSize, 1, 10_000_000);
  checkInt('seed', o.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (typeof o.noiseStd !== 'number' || !Number.isFinite(o.noiseStd) || o.noiseStd < 0) {
    throw new DataOptionError(
      'dataset.noiseStd',
      `synthetic dataset: noiseStd must be a finite number ≥ 0, got ${JSON.stringify(o.noiseStd)}`,
    );
  }
  return { ...o, shape: [o.shape[0], o.shape[1], o.shape[2]] };
}

function makeSplit(prototypes: Uint8Array, o: SyntheticOptions, n: number, rng: Rng): Split {
  const pixels = o.shape[0] * o.shape[1] * o.shape[2];
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % o.numClasses;
  rng.shuffleInPlace(labels);
  const images = new Uint8Array(n * pixels);
  const sigma = o.noiseStd * 255;
  for (let i = 0; i < n; i++) {
    const proto = labels[i]! * pixels;
    const base = i * pixels;
    for (let j = 0; j < pixels; j++) {
      const v = Math.round(prototypes[proto + j]! + sigma * rng.normal());
      images[base + j] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { images, labels, n };
}

/** Generates the data set described by `options` (already parsed or partial). */
export function makeSyntheticDataset(options: Partial<SyntheticOptions> = {}): Dataset {
  const o = parseSyntheticOptions(options);
  const pixels = o.shape[0] * o.shape[1] * o.shape[2];
  const prototypes = new Uint8Array(o.numClasses * pixels);
  const protoRng = new Rng(deriveSeed(o.seed, 'synthetic', 'prototypes'));
  for (let i = 0; i < prototypes.length; i++) prototypes[i] = protoRng.int(256);
  return {
    name: 'synthetic',
    shape: o.shape,
    numClasses: o.numClasses,
    classNames: Array.from({ length: o.numClasses }, (_, c) => `class${c}`),
    train: makeSplit(prototypes, o, o.trainSize, new Rng(deriveSeed(o.seed, 'synthetic', 'train'))),
    test: makeSplit(prototypes, o, o.testSize, new Rng(deriveSeed(o.seed, 'synthetic', 'test'))),
    source: 'synthetic',
  };
}
