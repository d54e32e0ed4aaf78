/**
 * CIFAR-10 binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each file is a
 * sequence of 3073-byte records, 1 label byte then 3×32×32 pixels in CHW order (1024 red,
 * 1024 green, 1024 blue, each plane row-major). Converted here to HWC.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataFormatError, DatasetNotFoundError } from './errors.js';
import { allInOrder, cachedParse, readMaybeGzip } from './file.js';
import type { Dataset, Split } from './types.js';

export const CIFAR10_SIDE = 32;
export const CIFAR10_CHANNELS = 3;
export const CIFAR10_PIXELS = CIFAR10_SIDE * CIFAR10_SIDE * CIFAR10_CHANNELS;
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_PIXELS;
export const CIFAR10_TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const;
export const CIFAR10_TEST_FILES = ['test_batch.bin'] as const;
export const CIFAR10_CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** Subdirectory the official tarball unpacks to; accepted inside the configured dir. */
export const CIFAR10_TARBALL_DIR = 'cifar-10-batches-bin';

/** Parses one in-memory batch file into HWC images. `path` is for messages. */
export function parseCifar10Batch(bytes: Uint8Array, path: string): Split {
  const recordShape = `1 label + 3×32×32 pixels`;
  if (bytes.length === 0) {
    throw new DataFormatError(path, `empty file, expected records of ${CIFAR10_RECORD_BYTES} bytes (${recordShape})`);
  }
  if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
    throw new DataFormatError(
      path,
      `size ${bytes.length} bytes is not a multiple of the ${CIFAR10_RECORD_BYTES}-byte record (${recordShape}): ` +
        `${whole} whole records and ${bytes.length % CIFAR10_RECORD_BYTES} bytes left over (truncated or not CIFAR-10 binary)`,
    );
  }
  const n = bytes.length / CIFAR10_RECORD_BYTES;
  const plane = CIFAR10_SIDE * CIFAR10_SIDE;
  const images = new Uint8Array(n * CIFAR10_PIXELS);
  const labels = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    const rec = r * CIFAR10_RECORD_BYTES;
    const label = bytes[rec]!;
    if (label > 9) {
      throw new DataFormatError(path, `record ${r} (byte offset ${rec}) has label ${label}, expected 0..9`);
    }
    labels[r] = label;
    const src = rec + 1;
    const dst = r * CIFAR10_PIXELS;
    for (let p = 0; p < plane; p++) {
      const o = dst + p * 3;
      images[o] = bytes[src + p]!;
      images[o + 1] = bytes[src + plane + p]!;
      images[o + 2] = bytes[src + 2 * plane + p]!;
    }
  }
  return { images, labels, n };
}

/** Reads (and caches per process) one CIFAR-10 batch file; gzip is accepted too. */
export function readCifar10Batch(path: string): Promise<Split> {
  return cachedParse(path, 'cifar10', async () => parseCifar10Batch((await readMaybeGzip(path)).bytes, path));
}

function concatSplits(parts: Split[]): Split {
  if (parts.length === 1) return parts[0]!;
  const n = parts.reduce((s, p) => s + p.n, 0);
  const images = new Uint8Array(n * CIFAR10_PIXELS);
  const labels = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * CIFAR10_PIXELS);
    labels.set(p.labels, at);
    at += p.n;
  }
  return { images, labels, n };
}

/**
 * The directory holding the batch files: `dir` itself, or `dir/cifar-10-batches-bin`
 * (the tarball layout). Throws DatasetNotFoundError listing the missing files.
 */
export function resolveCifar10Dir(dir: string): string {
  const all = [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES];
  const candidates = [dir, join(dir, CIFAR10_TARBALL_DIR)];
  for (const c of candidates) {
    if (all.every((f) => existsSync(join(c, f)))) return c;
  }
  const missing = all.filter((f) => !existsSync(join(dir, f)));
  throw new DatasetNotFoundError(
    'cifar10',
    candidates,
    `cifar10: ${dir} is missing ${missing.join(', ')}; expected all of ${all.join(', ')} ` +
      `in ${dir} or ${join(dir, CIFAR10_TARBALL_DIR)} (the binary version, cifar-10-binary.tar.gz, ` +
      `from https://www.cs.toronto.edu/~kriz/cifar.html)`,
  );
}

/** Loads the CIFAR-10 binary files under `dir` (see resolveCifar10Dir). */
export async function loadCifar10(dir: string): Promise<Dataset> {
  const root = resolveCifar10Dir(dir);
  const splits = await allInOrder<Split[]>([...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].map((f) => readCifar10Batch(join(root, f))));
  const train = splits.slice(0, CIFAR10_TRAIN_FILES.length);
  const test = splits.slice(CIFAR10_TRAIN_FILES.length);
  return {
    name: 'cifar10',
    shape: [CIFAR10_SIDE, CIFAR10_SIDE, CIFAR10_CHANNELS],
    numClasses: 10,
    classNames: [...CIFAR10_CLASS_NAMES],
    train: concatSplits(train),
    test: concatSplits(test),
    source: root,
  };
}
