import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCifar10, readCifar10Batch } from './cifar10.js';
import { DATA_FILE_FIX, DataFormatError, DatasetNotFoundError } from './errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'bnn-cifar-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Channel planes as the format stores them: value of channel c at pixel p of record r. */
const planeValue = (r: number, c: number, p: number): number => (r * 31 + c * 101 + p * 7) % 256;

/** Builds records byte by byte in the documented layout: label, then R, G, B planes of 1024. */
function records(labels: number[], first = 0): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((label, k) => {
    const r = first + k;
    out[k * 3073] = label;
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) out[k * 3073 + 1 + c * 1024 + p] = planeValue(r, c, p);
  });
  return out;
}

function writeCifarDir(dir: string, recordsPerFile = 2): void {
  mkdirSync(dir, { recursive: true });
  for (let b = 1; b <= 5; b++) {
    const first = (b - 1) * recordsPerFile;
    writeFileSync(
      join(dir, `data_batch_${b}.bin`),
      records(
        Array.from({ length: recordsPerFile }, (_, k) => (first + k) % 10),
        first,
      ),
    );
  }
  writeFileSync(join(dir, 'test_batch.bin'), records([9, 8, 7], 100));
}

test('cifar10 - converts CHW records to HWC images with their labels', async () => {
  const p = join(tmp, 'one.bin');
  writeFileSync(p, records([3, 9]));
  const split = await readCifar10Batch(p);
  assert.equal(split.n, 2);
  assert.deepEqual([...split.labels], [3, 9]);
  assert.equal(split.images.length, 2 * 32 * 32 * 3);
  for (let r = 0; r < 2; r++) {
    for (const [y, x] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [17, 5],
      [31, 31],
    ] as const) {
      for (let c = 0; c < 3; c++) {
        assert.equal(split.images[r * 3072 + (y * 32 + x) * 3 + c], planeValue(r, c, y * 32 + x), `r${r} y${y} x${x} c${c}`);
      }
    }
  }
});

test('cifar10 - loads data_batch_1..5 in order and test_batch, also from the tarball subdirectory', async () => {
  for (const [dir, root] of [
    [join(tmp, 'flat'), join(tmp, 'flat')],
    [join(tmp, 'tar'), join(tmp, 'tar', 'cifar-10-batches-bin')],
  ] as const) {
    writeCifarDir(root);
    const ds = await loadCifar10(dir);
    assert.deepEqual([ds.name, ds.shape, ds.numClasses, ds.source], ['cifar10', [32, 32, 3], 10, root]);
    assert.equal(ds.classNames[0], 'airplane');
    assert.equal(ds.train.n, 10);
    assert.deepEqual([...ds.train.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(ds.train.images[7 * 3072 + 2], planeValue(7, 2, 0)); // record 7 comes from data_batch_4
    assert.deepEqual([ds.test.n, [...ds.test.labels]], [3, [9, 8, 7]]);
    assert.equal(ds.test.images[3072 + 5 * 3 + 1], planeValue(101, 1, 5));
  }
});

test('cifar10 - a size that is not a whole number of records is a DataFormatError', async () => {
  const p = join(tmp, 'truncated.bin');
  writeFileSync(p, records([1, 2]).subarray(0, 3073 + 100));
  await assert.rejects(readCifar10Batch(p), (err: unknown) => {
    assert.ok(err instanceof DataFormatError);
    assert.ok(err.message.startsWith(`${p}: `));
    assert.match(
      err.message,
      /size 3173 bytes is not a multiple of the 3073-byte record \(1 label \+ 3×32×32 pixels\): 1 whole records and 100 bytes left over/,
    );
    return true;
  });
  const empty = join(tmp, 'empty.bin');
  writeFileSync(empty, new Uint8Array(0));
  await assert.rejects(readCifar10Batch(empty), /empty file/);
});

test('cifar10 - a label above 9 is a DataFormatError naming the record', async () => {
  const p = join(tmp, 'badlabel.bin');
  writeFileSync(p, records([0, 10, 1]));
  await assert.rejects(
    readCifar10Batch(p),
    (err: unknown) =>
      err instanceof DataFormatError && err.message === `${p}: record 1 (byte offset 3073) has label 10, expected 0..9; ${DATA_FILE_FIX}`,
  );
});

test('cifar10 - missing files are listed with the expected names', async () => {
  const dir = join(tmp, 'partial');
  writeCifarDir(dir);
  rmSync(join(dir, 'data_batch_3.bin'));
  rmSync(join(dir, 'test_batch.bin'));
  await assert.rejects(loadCifar10(dir), (err: unknown) => {
    assert.ok(err instanceof DatasetNotFoundError);
    assert.equal(err.dataset, 'cifar10');
    assert.match(
      err.message,
      /is missing data_batch_3\.bin, test_batch\.bin; expected all of data_batch_1\.bin, .*data_batch_5\.bin, test_batch\.bin/,
    );
    assert.ok(err.message.includes(dir));
    return true;
  });
});
