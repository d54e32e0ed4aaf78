// Every family of bad data set, met by the real `bnn train` (a child process) on crafted copies
// of the real fashion-mnist files: exit 1, one message naming the file and what to do, no stack,
// and no run left RUNNING in the store (the data set is loaded before the run's row is written).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { assertUserError, type DataChange, type IDX_FILES, idxHead, storedRuns, writeDataCopy, writeRunConfig } from './fixtures.js';

/** Trains on a crafted copy of the data set; returns the CLI's result, the files and the store. */
async function trainOn(t: { after(fn: () => void): void }, change: DataChange | null, dataDir?: (dir: string) => string) {
  const dir = await tmpDir({ t, prefix: 'bnn-faults-data-' });
  const data = dir.join('data');
  mkdirSync(data);
  const files = writeDataCopy(data, change ? { change } : {});
  const store = dir.join('bnn.db');
  const config = writeRunConfig(dir.path, {
    dataDir: dataDir ? dataDir(dir.path) : data,
    store,
    checkpointDir: dir.join('ckpt'),
    subset: 1,
  });
  const r = await runCli(['train', config, '--quiet'], { cwd: dir.path, timeoutMs: 60_000 });
  return { r, files, store };
}

/** Nothing left RUNNING: no row at all, or a FAILED one giving the reason. */
function assertNoRunLeftRunning(store: string): void {
  for (const run of storedRuns(store)) {
    assert.equal(run.status, 'FAILED', `run ${run.id} is ${run.status}`);
    assert.ok(run.error && run.error.length > 0, `run ${run.id} is FAILED without a reason`);
  }
}

test('faults data - the crafted copy of fashion-mnist itself trains (the control for the cases below)', async (t) => {
  const { r, store } = await trainOn(t, null);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    storedRuns(store).map((x) => x.status),
    ['COMPLETED'],
  );
});

const CASES: { name: string; change: DataChange; file: keyof typeof IDX_FILES; says: RegExp }[] = [
  {
    name: 'a truncated IDX file (complete gzip, short payload)',
    file: 'trainImages',
    change: (f, idx) => (f === 'trainImages' ? { idx: idx.subarray(0, idx.length - 1000) } : null),
    says: /truncated: header says 640×28×28 = 501760 bytes of .*, file has 500760 \(after gunzip\)/,
  },
  {
    name: 'a file with the wrong magic',
    file: 'testLabels',
    change: (f, idx) => (f === 'testLabels' ? { idx: Buffer.concat([Buffer.from('PK\u0003\u0004'), idx.subarray(4)]) } : null),
    says: /wrong magic: not an IDX file, first bytes are 50 4b 03 04, expected 00 00 08 01/,
  },
  {
    name: 'one label fewer than images',
    file: 'trainLabels',
    change: (f, idx) => (f === 'trainLabels' ? { idx: idxHead(idx, 639) } : null),
    says: /holds 639 labels but .*train-images-idx3-ubyte\.gz holds 640 images; expected one label per image/,
  },
  {
    name: 'an empty file',
    file: 'testImages',
    change: (f) => (f === 'testImages' ? { raw: Buffer.alloc(0) } : null),
    says: /empty file: expected an IDX header/,
  },
  {
    name: 'a corrupt (cut short) gzip stream',
    file: 'trainLabels',
    change: (f, idx) => (f === 'trainLabels' ? { raw: gzipSync(idx).subarray(0, 300) } : null),
    says: /corrupt gzip: unexpected end of compressed data \(the \.gz file is truncated\)/,
  },
];

for (const c of CASES) {
  test(`faults data - ${c.name}: exit 1, the file named with a fix, no stack, no run left RUNNING`, async (t) => {
    const { r, files, store } = await trainOn(t, c.change);
    assertUserError(r, [`${files[c.file]}: `, c.says, /re-download or reinstall the data set, or point dataset\.dir/]);
    assertNoRunLeftRunning(store);
  });
}

test('faults data - a data set directory that does not exist: exit 1, the directory and how to get the data, no run left RUNNING', async (t) => {
  const { r, store } = await trainOn(t, null, (dir) => join(dir, 'no-such-data'));
  assertUserError(r, [
    /dataset fashion-mnist not found: \S+\/no-such-data \(dataset\.dir\) does not exist/,
    /To get it: .*point dataset\.dir at their directory/,
  ]);
  assertNoRunLeftRunning(store);
});
