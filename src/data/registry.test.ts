import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataFormatError, DataOptionError, DatasetNotFoundError } from './errors.js';
import { loadDataset, type DatasetSpec } from './registry.js';
import { encodeIdx, writeFakeIdxDataset } from './testing.js';

const tmp = mkdtempSync(join(tmpdir(), 'bnn-registry-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const nowhere = join(tmp, 'no-system-datasets');

test('registry - fashion-mnist loads from the system data directory', async () => {
  const ds = await loadDataset({ name: 'fashion-mnist' }, { env: {} });
  assert.equal(ds.source, '/usr/share/datasets/fashion-mnist');
  assert.deepEqual([ds.name, ds.shape, ds.numClasses, ds.train.n, ds.test.n], ['fashion-mnist', [28, 28, 1], 10, 60000, 10000]);
  assert.deepEqual([ds.classNames[0], ds.classNames[9]], ['T-shirt/top', 'Ankle boot']);
  const again = await loadDataset({ name: 'fashion-mnist' }, { env: {} });
  assert.equal(again.train.images, ds.train.images, 'second load reuses the cached pixels');
});

test('registry - BNN_DATA_DIR/<name> wins over the system directory when it exists', async () => {
  const dataDir = join(tmp, 'data');
  writeFakeIdxDataset(join(dataDir, 'fashion-mnist'), { trainN: 20, testN: 10 });
  const ds = await loadDataset({ name: 'fashion-mnist' }, { env: { BNN_DATA_DIR: dataDir } });
  assert.deepEqual([ds.source, ds.train.n, ds.test.n], [join(dataDir, 'fashion-mnist'), 20, 10]);
  assert.deepEqual([...ds.train.labels.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  assert.equal(ds.train.images[3 * 784 + 5], 8);
  // Without a fashion-mnist subdirectory there, the system copy is used.
  const fallback = await loadDataset({ name: 'fashion-mnist' }, { env: { BNN_DATA_DIR: join(tmp, 'empty-data') } });
  assert.equal(fallback.source, '/usr/share/datasets/fashion-mnist');
});

test('registry - dataset.dir is used alone, and a missing one is not silently replaced', async () => {
  const dir = join(tmp, 'explicit-mnist');
  writeFakeIdxDataset(dir, { trainN: 7, testN: 3, gzip: false });
  const ds = await loadDataset({ name: 'mnist', dir }, { env: { BNN_DATA_DIR: join(tmp, 'data') } });
  assert.deepEqual([ds.name, ds.source, ds.train.n, ds.test.n, ds.classNames[3]], ['mnist', dir, 7, 3, '3']);
  const missing = join(tmp, 'nope');
  await assert.rejects(loadDataset({ name: 'fashion-mnist', dir: missing }), (err: unknown) => {
    assert.ok(err instanceof DatasetNotFoundError);
    assert.deepEqual(err.searched, [missing]);
    assert.match(err.message, /dataset fashion-mnist not found: .*nope \(dataset\.dir\) does not exist/);
    return true;
  });
});

test('registry - a missing data set says where it looked and how to get it', async () => {
  await assert.rejects(loadDataset({ name: 'fashion-mnist' }, { env: {}, systemDataDir: nowhere }), (err: unknown) => {
    assert.ok(err instanceof DatasetNotFoundError);
    assert.equal(err.name, 'DatasetNotFoundError');
    assert.deepEqual(err.searched, [join(nowhere, 'fashion-mnist')]);
    assert.ok(err.message.includes(join(nowhere, 'fashion-mnist')));
    assert.match(err.message, /BNN_DATA_DIR is not set/);
    assert.match(err.message, /apt-get install dataset-fashion-mnist/);
    assert.match(err.message, /dataset\.dir/);
    return true;
  });
  const dataDir = join(tmp, 'data-without-mnist');
  mkdirSync(dataDir, { recursive: true });
  await assert.rejects(loadDataset({ name: 'mnist' }, { env: { BNN_DATA_DIR: dataDir }, systemDataDir: nowhere }), (err: unknown) => {
    assert.ok(err instanceof DatasetNotFoundError);
    assert.deepEqual(err.searched, [join(dataDir, 'mnist'), join(nowhere, 'mnist')]);
    assert.match(err.message, /\$BNN_DATA_DIR=/);
    return true;
  });
  await assert.rejects(
    loadDataset({ name: 'cifar10' }, { env: {} }),
    /dataset cifar10 not found: BNN_DATA_DIR is not set.*cifar-10-binary/,
  );
});

test('registry - a directory lacking some files lists them', async () => {
  const dir = join(tmp, 'partial');
  writeFakeIdxDataset(dir);
  rmSync(join(dir, 't10k-labels-idx1-ubyte.gz'));
  await assert.rejects(
    loadDataset({ name: 'fashion-mnist', dir }),
    (err: unknown) => err instanceof DatasetNotFoundError && /lacks t10k-labels-idx1-ubyte\[\.gz\]; expected all of/.test(err.message),
  );
});

test('registry - files with the wrong image size for the data set are rejected', async () => {
  const dir = join(tmp, 'wrong-size');
  writeFakeIdxDataset(dir, { rows: 32, cols: 32 });
  await assert.rejects(
    loadDataset({ name: 'fashion-mnist', dir }),
    (err: unknown) =>
      err instanceof DataFormatError && /train-images-idx3-ubyte\.gz: images are 32×32, expected 28×28 for fashion-mnist/.test(err.message),
  );
  const badLabels = join(tmp, 'bad-labels');
  writeFakeIdxDataset(badLabels);
  writeFileSync(join(badLabels, 't10k-labels-idx1-ubyte.gz'), encodeIdx([10], new Uint8Array(10).fill(10)));
  await assert.rejects(
    loadDataset({ name: 'mnist', dir: badLabels }),
    /t10k-labels-idx1-ubyte\.gz: label 10 at index 0 is out of range, expected 0\.\.9/,
  );
});

test('registry - cifar10 loads from BNN_DATA_DIR/cifar10', async () => {
  const dir = join(tmp, 'data', 'cifar10');
  mkdirSync(dir, { recursive: true });
  const record = new Uint8Array(3073);
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) {
    writeFileSync(join(dir, f), record);
  }
  const ds = await loadDataset({ name: 'cifar10' }, { env: { BNN_DATA_DIR: join(tmp, 'data') } });
  assert.deepEqual([ds.source, ds.shape, ds.train.n, ds.test.n], [dir, [32, 32, 3], 5, 1]);
});

test('registry - an unknown name or bad spec is a DataOptionError before any I/O', async () => {
  await assert.rejects(loadDataset({ name: 'fmnist' } as unknown as DatasetSpec), (err: unknown) => {
    assert.ok(err instanceof DataOptionError);
    assert.equal(err.option, 'dataset.name');
    assert.equal(err.message, 'unknown dataset "fmnist"; valid names: fashion-mnist, mnist, cifar10, synthetic');
    return true;
  });
  await assert.rejects(
    loadDataset({ name: 'mnist', dir: '' }),
    (err: unknown) => err instanceof DataOptionError && err.option === 'dataset.dir',
  );
  await assert.rejects(
    loadDataset({ name: 'synthetic', numClasses: 1 }),
    (err: unknown) =>
      err instanceof DataOptionError &&
      err.option === 'dataset.numClasses' &&
      /numClasses must be an integer in 2\.\.256, got 1/.test(err.message),
  );
});

test('registry - synthetic data sets are cached per options and independent of object identity', async () => {
  const a = await loadDataset({ name: 'synthetic', seed: 3, trainSize: 40, testSize: 20 });
  const b = await loadDataset({ name: 'synthetic', seed: 3, trainSize: 40, testSize: 20 });
  assert.equal(a.source, 'synthetic');
  assert.equal(b.train.images, a.train.images);
  b.shape[0] = 99;
  assert.equal(a.shape[0], 8, 'callers get their own shape array');
  const c = await loadDataset({ name: 'synthetic', seed: 4, trainSize: 40, testSize: 20 });
  assert.notDeepEqual([...c.train.images], [...a.train.images]);
});
