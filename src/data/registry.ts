/**
 * `loadDataset(spec)`: one entry point for every data set, with the lookup rules in one
 * place. Parsed files are cached per process, so loading twice is cheap and returns
 * the same (read-only) pixel arrays.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCifar10 } from './cifar10.js';
import { DataOptionError, DatasetNotFoundError } from './errors.js';
import { allInOrder, clearDataCache } from './file.js';
import { readIdxSplit } from './idx.js';
import { makeSyntheticDataset, parseSyntheticOptions, type SyntheticOptions } from './synthetic.js';
import type { Dataset } from './types.js';

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export type DatasetSpec =
  | {
      name: 'fashion-mnist' | 'mnist' | 'cifar10';
      /** Directory holding the files; when set, nothing else is searched. */
      dir?: string;
    }
  | ({ name: 'synthetic' } & Partial<SyntheticOptions>);

export interface LoadDatasetOptions {
  /** Environment to read BNN_DATA_DIR from; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where system packages put data sets; default '/usr/share/datasets'. */
  systemDataDir?: string;
}

export const DEFAULT_SYSTEM_DATA_DIR = '/usr/share/datasets';
export const DATA_DIR_ENV = 'BNN_DATA_DIR';

interface IdxFamilyInfo {
  rows: number;
  cols: number;
  classNames: string[];
  /** How to get it, for the not-found message. */
  howToGet: string;
}

const IDX_FAMILY: Record<'fashion-mnist' | 'mnist', IdxFamilyInfo> = {
  'fashion-mnist': {
    rows: 28,
    cols: 28,
    classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    howToGet: 'install it with `apt-get install dataset-fashion-mnist`',
  },
  mnist: {
    rows: 28,
    cols: 28,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    howToGet: 'download the four files from http://yann.lecun.com/exdb/mnist/ (or a mirror)',
  },
};

/** The four MNIST-family files, without the optional `.gz`. */
export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** Validates a spec before any I/O; throws DataOptionError. */
export function validateDatasetSpec(spec: unknown): DatasetSpec {
  if (typeof spec !== 'object' || spec === null) {
    throw new DataOptionError('dataset', `dataset spec must be an object like { name: 'fashion-mnist' }, got ${JSON.stringify(spec)}`);
  }
  const { name, dir } = spec as { name?: unknown; dir?: unknown };
  if (typeof name !== 'string' || !(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new DataOptionError('dataset.name', `unknown dataset ${JSON.stringify(name)}; valid names: ${DATASET_NAMES.join(', ')}`);
  }
  if (dir !== undefined && (typeof dir !== 'string' || dir === '')) {
    throw new DataOptionError('dataset.dir', `dataset.dir must be a non-empty path, got ${JSON.stringify(dir)}`);
  }
  if (name === 'synthetic') parseSyntheticOptions(spec as Partial<SyntheticOptions>);
  return spec as DatasetSpec;
}

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * Where a file-based data set is read from: `spec.dir` when given, else
 * `$BNN_DATA_DIR/<name>` when that directory exists, else `<systemDataDir>/<name>`
 * (fashion-mnist, mnist). Throws DatasetNotFoundError saying where it looked.
 */
export function resolveDatasetDir(
  spec: { name: 'fashion-mnist' | 'mnist' | 'cifar10'; dir?: string },
  options: LoadDatasetOptions = {},
): string {
  const env = options.env ?? process.env;
  const systemDir = options.systemDataDir ?? DEFAULT_SYSTEM_DATA_DIR;
  const looked: Array<{ dir: string; via: string }> = [];
  if (spec.dir !== undefined) {
    const dir = resolve(spec.dir);
    if (isDir(dir)) return dir;
    looked.push({ dir, via: 'dataset.dir' });
  } else {
    const envDir = env[DATA_DIR_ENV];
    if (envDir) {
      const dir = resolve(envDir, spec.name);
      if (isDir(dir)) return dir;
      looked.push({ dir, via: `$${DATA_DIR_ENV}=${envDir}` });
    }
    if (spec.name !== 'cifar10') {
      const dir = join(systemDir, spec.name);
      if (isDir(dir)) return dir;
      looked.push({ dir, via: 'system data directory' });
    }
  }
  const facts = looked.map((l) => `${l.dir} (${l.via}) does not exist`);
  if (spec.dir === undefined && !env[DATA_DIR_ENV]) facts.push(`${DATA_DIR_ENV} is not set`);
  const how =
    spec.name === 'cifar10'
      ? `download the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html ` +
        `and unpack it into $${DATA_DIR_ENV}/cifar10, or point dataset.dir at it`
      : `${IDX_FAMILY[spec.name].howToGet}, or put ${Object.values(IDX_FILES)
          .map((f) => `${f}.gz`)
          .join(', ')} ` + `in $${DATA_DIR_ENV}/${spec.name}, or point dataset.dir at their directory`;
  throw new DatasetNotFoundError(
    spec.name,
    looked.map((l) => l.dir),
    `dataset ${spec.name} not found: ${facts.join('; ')}. To get it: ${how}.`,
  );
}

/** The four files' paths in `dir` (`.gz` preferred, uncompressed accepted); lists every missing one. */
function findIdxFiles(dir: string, dataset: string): Record<keyof typeof IDX_FILES, string> {
  const found: Partial<Record<keyof typeof IDX_FILES, string>> = {};
  const missing: string[] = [];
  for (const [key, base] of Object.entries(IDX_FILES) as Array<[keyof typeof IDX_FILES, string]>) {
    const hit = [`${base}.gz`, base].map((f) => join(dir, f)).find((p) => existsSync(p));
    if (hit) found[key] = hit;
    else missing.push(`${base}[.gz]`);
  }
  if (missing.length > 0) {
    throw new DatasetNotFoundError(
      dataset,
      [dir],
      `dataset ${dataset}: ${dir} lacks ${missing.join(', ')}; expected all of ` +
        `${Object.values(IDX_FILES)
          .map((f) => `${f}[.gz]`)
          .join(', ')}`,
    );
  }
  return found as Record<keyof typeof IDX_FILES, string>;
}

async function loadIdxFamily(name: 'fashion-mnist' | 'mnist', dir: string): Promise<Dataset> {
  const info = IDX_FAMILY[name];
  const files = findIdxFiles(dir, name);
  const expect = { rows: info.rows, cols: info.cols, numClasses: info.classNames.length, dataset: name };
  const [train, test] = await allInOrder([
    readIdxSplit(files.trainImages, files.trainLabels, expect),
    readIdxSplit(files.testImages, files.testLabels, expect),
  ] as const);
  return {
    name,
    shape: [info.rows, info.cols, 1],
    numClasses: info.classNames.length,
    classNames: [...info.classNames],
    train: { images: train.images, labels: train.labels, n: train.n },
    test: { images: test.images, labels: test.labels, n: test.n },
    source: dir,
  };
}

const syntheticCache = new Map<string, Dataset>();

function loadSynthetic(spec: Partial<SyntheticOptions>): Dataset {
  const o = parseSyntheticOptions(spec);
  const key = JSON.stringify(o);
  let ds = syntheticCache.get(key);
  if (!ds) {
    ds = makeSyntheticDataset(o);
    syntheticCache.set(key, ds);
  }
  return { ...ds, shape: [...ds.shape], classNames: [...ds.classNames] };
}

/**
 * Loads a data set. Throws DataOptionError for a bad spec (before any I/O),
 * DatasetNotFoundError when it is not installed, DataFormatError for bad files.
 */
export async function loadDataset(spec: DatasetSpec, options: LoadDatasetOptions = {}): Promise<Dataset> {
  const s = validateDatasetSpec(spec);
  switch (s.name) {
    case 'synthetic':
      return loadSynthetic(s);
    case 'cifar10':
      return loadCifar10(resolveDatasetDir(s, options));
    case 'fashion-mnist':
    case 'mnist':
      return loadIdxFamily(s.name, resolveDatasetDir(s, options));
  }
}

/** Drops all per-process caches (parsed files and generated data sets). */
export function clearDatasetCache(): void {
  clearDataCache();
  syntheticCache.clear();
}
