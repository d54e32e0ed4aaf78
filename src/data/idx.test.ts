import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DataFormatError, DatasetNotFoundError } from './errors.js';
import { readIdxImages, readIdxLabels, readIdxSplit } from './idx.js';
import { encodeIdx } from './testing.js';

const FMNIST = '/usr/share/datasets/fashion-mnist';
const tmp = mkdtempSync(join(tmpdir(), 'bnn-idx-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, bytes: Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

/** Asserts `fn` rejects with DataFormatError whose message starts with the path and matches every pattern. */
async function rejectsFormat(fn: () => Promise<unknown>, path: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof DataFormatError, `expected DataFormatError, got ${String(err)}`);
    assert.equal(err.name, 'DataFormatError');
    assert.equal(err.path, path);
    assert.ok(err.message.startsWith(`${path}: `), err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

test('idx - reads the real Fashion-MNIST train and test files', async () => {
  const train = await readIdxSplit(join(FMNIST, 'train-images-idx3-ubyte.gz'), join(FMNIST, 'train-labels-idx1-ubyte.gz'), {
    numClasses: 10,
  });
  const testSplit = await readIdxSplit(join(FMNIST, 't10k-images-idx3-ubyte.gz'), join(FMNIST, 't10k-labels-idx1-ubyte.gz'), {
    numClasses: 10,
  });
  assert.deepEqual([train.n, train.rows, train.cols, train.images.length], [60000, 28, 28, 60000 * 784]);
  assert.deepEqual([testSplit.n, testSplit.rows, testSplit.cols, testSplit.images.length], [10000, 28, 28, 10000 * 784]);
  const perClass = (labels: Uint8Array): number[] => {
    const c = new Array<number>(10).fill(0);
    for (const l of labels) c[l]!++;
    return c;
  };
  assert.deepEqual(perClass(train.labels), new Array(10).fill(6000));
  assert.deepEqual(perClass(testSplit.labels), new Array(10).fill(1000));
  // Computed once from the files (mean pixel 72.94, the published 0.2860·255).
  const sum = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0);
  assert.equal(sum(train.images), 3431114169);
  assert.equal(sum(testSplit.images), 573469082);
  assert.equal(sum(train.images.subarray(0, 784)), 76247);
  assert.deepEqual([...train.labels.subarray(0, 10)], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  assert.deepEqual([...testSplit.labels.subarray(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
});

test('idx - raw and gzipped copies of a file parse to the same data', async () => {
  const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 37) % 256);
  const idx = encodeIdx([3, 4, 5], pixels);
  const raw = await readIdxImages(writeTmp('same-raw', idx));
  const gz = await readIdxImages(writeTmp('same.gz', gzipSync(idx)));
  const misnamed = await readIdxImages(writeTmp('not-gzip.gz', idx)); // detected by content, not name
  for (const r of [raw, gz, misnamed]) {
    assert.deepEqual([r.n, r.rows, r.cols], [3, 4, 5]);
    assert.deepEqual([...r.pixels], [...pixels]);
  }
});

test('idx - a truncated gzip file is a DataFormatError naming the file', async () => {
  const gz = readFileSync(join(FMNIST, 'train-labels-idx1-ubyte.gz'));
  const p = writeTmp('train-labels-idx1-ubyte.gz', gz.subarray(0, 10_000));
  await rejectsFormat(() => readIdxLabels(p), p, /corrupt gzip/, /truncated/);
});

test('idx - a corrupted gzip file is a DataFormatError with the zlib error as cause', async () => {
  const gz = Buffer.from(readFileSync(join(FMNIST, 't10k-labels-idx1-ubyte.gz')));
  for (let i = 2000; i < 2016; i++) gz[i] = gz[i]! ^ 0xff;
  const p = writeTmp('corrupt-labels.gz', gz);
  await rejectsFormat(() => readIdxLabels(p), p, /corrupt gzip/);
  await assert.rejects(readIdxLabels(p), (err: unknown) => err instanceof DataFormatError && err.cause instanceof Error);
});

test('idx - a payload shorter than the header says is reported with both sizes', async () => {
  const header = encodeIdx([60000, 28, 28], new Uint8Array(1234));
  const p = writeTmp('short-images', header);
  await rejectsFormat(
    () => readIdxImages(p),
    p,
    /truncated: header says 60000×28×28 = 47040000 bytes of pixels, file has 1234; re-download or reinstall the data set/,
  );
  const pgz = writeTmp('short-images.gz', gzipSync(header));
  await rejectsFormat(() => readIdxImages(pgz), pgz, /file has 1234 \(after gunzip\)/);
  const tiny = writeTmp('tiny', encodeIdx([1, 2, 2], new Uint8Array(4)).subarray(0, 9));
  await rejectsFormat(() => readIdxImages(tiny), tiny, /truncated: a rank-3 IDX header needs 16 bytes, file has 9/);
});

test('idx - a wrong magic, type code or rank is reported with what was expected', async () => {
  const png = writeTmp('image.png', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  await rejectsFormat(() => readIdxImages(png), png, /wrong magic/, /89 50 4e 47/, /expected 00 00 08 03/);
  const floats = encodeIdx([1, 1, 1], new Uint8Array(4));
  floats[2] = 0x0d;
  const pf = writeTmp('floats', floats);
  await rejectsFormat(() => readIdxImages(pf), pf, /element type 0x0d \(float32\), expected 0x08/);
  const labelsAsImages = writeTmp('labels-as-images', encodeIdx([4], new Uint8Array(4)));
  await rejectsFormat(() => readIdxImages(labelsAsImages), labelsAsImages, /IDX rank is 1, expected 3 \(images: count×rows×cols\)/);
});

test('idx - header dimensions that disagree with the payload are rejected', async () => {
  // Header claims 2 images of 28×28, the file carries 3.
  const p = writeTmp('dims-mismatch', encodeIdx([2, 28, 28], new Uint8Array(3 * 784)));
  await rejectsFormat(
    () => readIdxImages(p),
    p,
    /length mismatch: header says 2×28×28 = 1568 bytes of pixels, file has 2352 \(784 bytes too many\)/,
  );
});

test('idx - a split checks image size, label range and matching counts', async () => {
  const images = writeTmp('img-28x27', encodeIdx([2, 28, 27], new Uint8Array(2 * 28 * 27)));
  const labels = writeTmp('lab-2', encodeIdx([2], Uint8Array.from([0, 1])));
  await rejectsFormat(
    () => readIdxSplit(images, labels, { rows: 28, cols: 28, dataset: 'fashion-mnist' }),
    images,
    /images are 28×27, expected 28×28 for fashion-mnist/,
  );
  const images3 = writeTmp('img-3', encodeIdx([3, 2, 2], new Uint8Array(12)));
  await rejectsFormat(() => readIdxSplit(images3, labels), labels, /holds 2 labels but .*img-3 holds 3 images/);
  const badLabels = writeTmp('lab-bad', encodeIdx([3], Uint8Array.from([0, 9, 10])));
  await rejectsFormat(
    () => readIdxSplit(images3, badLabels, { numClasses: 10 }),
    badLabels,
    /label 10 at index 2 is out of range, expected 0\.\.9/,
  );
  const ok = await readIdxSplit(images3, writeTmp('lab-3', encodeIdx([3], Uint8Array.from([0, 9, 1]))), { numClasses: 10 });
  assert.deepEqual([ok.n, ok.rows, ok.cols, [...ok.labels]], [3, 2, 2, [0, 9, 1]]);
});

test('idx - a missing file is a DatasetNotFoundError naming it', async () => {
  const p = join(tmp, 'no-such-file.gz');
  await assert.rejects(readIdxLabels(p), (err: unknown) => err instanceof DatasetNotFoundError && err.message.includes(p));
});

test('idx - parsed files are cached per process and re-read when rewritten', async () => {
  const p = writeTmp('cached', encodeIdx([2], Uint8Array.from([1, 2])));
  const a = await readIdxLabels(p);
  assert.equal(await readIdxLabels(p), a);
  writeFileSync(p, encodeIdx([3], Uint8Array.from([4, 5, 6])));
  assert.deepEqual([...(await readIdxLabels(p))], [4, 5, 6]);
});
