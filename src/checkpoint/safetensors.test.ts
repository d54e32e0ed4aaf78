import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { tmpDir } from '../../test/helpers/tmp.js';
import { CheckpointError } from './errors.js';
import { DTYPES, readSafetensors, removeTempFiles, writeFileAtomic, writeSafetensors, type Dtype, type Tensor } from './safetensors.js';

/** One tensor per dtype, with values that exercise sign, extremes and odd lengths. */
function everyDtype(): Record<string, Tensor> {
  const t = (dtype: Dtype, shape: number[], data: Tensor['data']): Tensor => ({ dtype, shape, data });
  return {
    f64: t('F64', [3], new Float64Array([Math.PI, -0, 1e300])),
    f32: t('F32', [2, 3], new Float32Array([1.5, -2.25, 0, 3e38, -1e-38, NaN])),
    f16: t('F16', [3], new Uint16Array([0x3c00, 0xc000, 0x7bff])),
    bf16: t('BF16', [2], new Uint16Array([0x3f80, 0xbf80])),
    i64: t('I64', [2], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n])),
    i32: t('I32', [1, 3], new Int32Array([-1, 0, 2147483647])),
    i16: t('I16', [3], new Int16Array([-32768, 1, 32767])),
    i8: t('I8', [5], new Int8Array([-128, -1, 0, 1, 127])),
    u64: t('U64', [1], new BigUint64Array([2n ** 64n - 1n])),
    u32: t('U32', [2], new Uint32Array([0, 4294967295])),
    u16: t('U16', [1], new Uint16Array([65535])),
    u8: t('U8', [7], new Uint8Array([0, 1, 2, 3, 4, 254, 255])),
    bool: t('BOOL', [3], new Uint8Array([1, 0, 1])),
    scalar: t('F32', [], new Float32Array([42])),
    empty: t('F32', [0, 4], new Float32Array(0)),
  };
}

/** Builds a file by hand: header JSON as given, then the data bytes. */
function rawFile(header: unknown, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

async function expectCheckpointError(promise: Promise<unknown>, pattern: RegExp, file: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(file), `${err.message} names ${file}`);
    assert.equal(err.file, file);
    return true;
  });
}

test('safetensors - every dtype round-trips bit-exactly with metadata', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('all.safetensors');
  const tensors = everyDtype();
  const written = await writeSafetensors(file, tensors, { format: 'test', note: 'ünïcode' });
  const bytes = await readFile(file);
  assert.equal(written.bytes, bytes.length);
  assert.equal(written.sha256, createHash('sha256').update(bytes).digest('hex'));

  const back = await readSafetensors(file, { expectedSha256: written.sha256 });
  assert.deepEqual(back.metadata, { format: 'test', note: 'ünïcode' });
  assert.equal(back.sha256, written.sha256);
  assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, want] of Object.entries(tensors)) {
    const got = back.tensors[name]!;
    assert.equal(got.dtype, want.dtype, name);
    assert.deepEqual(got.shape, want.shape, name);
    assert.equal(got.data.constructor, DTYPES[want.dtype].array, name);
    // Compare bytes, so NaN and -0 count as equal only when bit-identical.
    assert.deepEqual(
      Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength),
      Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength),
      name,
    );
  }
});

test('safetensors - layout follows the spec: LE length, 8-aligned header, sorted contiguous data', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('layout.safetensors');
  await writeSafetensors(file, {
    b: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
    a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
  });
  const bytes = await readFile(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: number[] }>;
  assert.deepEqual(header.a!.data_offsets, [0, 8], 'wider dtype first');
  assert.deepEqual(header.b!.data_offsets, [8, 11]);
  assert.equal(bytes.length, 8 + n + 11);
  assert.equal(bytes.readFloatLE(8 + n + 4), 2);
});

test('safetensors - atomic write leaves no temp file and replaces the old file', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('ckpt.safetensors');
  await writeSafetensors(file, { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
  await writeSafetensors(file, { w: { dtype: 'F32', shape: [1], data: new Float32Array([2]) } });
  assert.deepEqual(await readdir(dir.path), ['ckpt.safetensors']);
  assert.equal((await readSafetensors(file)).tensors.w!.data[0], 2);

  // A failed write (its target is a directory) cleans up after itself too.
  await assert.rejects(writeSafetensors(dir.path, { w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } }), CheckpointError);
  assert.deepEqual(await readdir(dir.path), ['ckpt.safetensors']);
});

test('safetensors - writer rejects data that does not match dtype or shape', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('x.safetensors');
  await assert.rejects(writeSafetensors(file, { w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }), /needs a Float32Array/);
  await assert.rejects(writeSafetensors(file, { w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /3 elements, data has 2/);
  await assert.rejects(writeSafetensors(file, { w: { dtype: 'BOOL', shape: [1], data: new Uint8Array([2]) } }), /0 or 1/);
  assert.deepEqual(await readdir(dir.path), []);
});

test('safetensors - truncated files are rejected naming the file', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('t.safetensors');
  await writeSafetensors(file, { w: { dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length - 3));
  await expectCheckpointError(readSafetensors(file), /truncated: tensor "w" ends at byte 16/, file);
  await writeFile(file, bytes.subarray(0, 20));
  await expectCheckpointError(readSafetensors(file), /truncated: header claims \d+ bytes/, file);
  await writeFile(file, bytes.subarray(0, 5));
  await expectCheckpointError(readSafetensors(file), /truncated: 5 bytes/, file);
});

test('safetensors - hash mismatch names both hashes', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('h.safetensors');
  const { sha256 } = await writeSafetensors(file, { w: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) } });
  const wrong = '0'.repeat(64);
  await assert.rejects(readSafetensors(file, { expectedSha256: wrong }), (err: unknown) => {
    assert.ok(err instanceof CheckpointError);
    assert.ok(err.message.includes(wrong) && err.message.includes(sha256), err.message);
    assert.ok(err.message.includes(file));
    return true;
  });
});

test('safetensors - bad headers: overlaps, gaps, sizes, dtypes, JSON', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('bad.safetensors');
  const cases: [unknown, number, RegExp][] = [
    [{ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, 6, /overlap/],
    [
      { a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] } },
      6,
      /gap in data: bytes \[2, 4\)/,
    ],
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4, /F32\[2\] \(8 bytes\) but data_offsets span 4/],
    [{ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1, /unknown dtype "F8" \(allowed: F64, F32/],
    [{ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, 1, /shape \[-1\]/],
    [{ a: { dtype: 'U8', shape: [1], data_offsets: [1, 0] } }, 1, /data_offsets \[1,0\]/],
    [{ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, 3, /2 trailing bytes/],
    [{ a: { dtype: 'BOOL', shape: [1], data_offsets: [0, 1] } }, 1, /BOOL but holds a byte other than 0 or 1/],
    [{ __metadata__: { k: 1 } }, 0, /__metadata__\.k is not a string/],
    [[1, 2], 0, /header is not a JSON object/],
  ];
  for (const [header, dataBytes, pattern] of cases) {
    await writeFile(file, rawFile(header, new Uint8Array(dataBytes).fill(7)));
    await expectCheckpointError(readSafetensors(file), pattern, file);
  }
  const notJson = Buffer.alloc(12);
  notJson.writeBigUInt64LE(4n);
  notJson.write('{abc', 8);
  await writeFile(file, notJson);
  await expectCheckpointError(readSafetensors(file), /not valid UTF-8 JSON/, file);
  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(2n ** 40n);
  await writeFile(file, huge);
  await expectCheckpointError(readSafetensors(file), /exceeds the 100000000-byte limit/, file);
  await expectCheckpointError(readSafetensors(dir.join('missing.safetensors')), /cannot read/, dir.join('missing.safetensors'));
});

test('safetensors - removeTempFiles deletes the temp files of this process in flight, not those of another', async (t) => {
  const dir = await tmpDir({ t });
  const other = `.ckpt.safetensors.${process.pid + 1}.0a1b2c3d.tmp`;
  await writeFile(dir.join(other), 'another process writes this');
  let resume!: () => void;
  const paused = new Promise<void>((r) => {
    resume = r;
  });
  let firstWritten!: () => void;
  const started = new Promise<void>((r) => {
    firstWritten = r;
  });
  const writing = writeFileAtomic(
    dir.join('ckpt.safetensors'),
    (async function* () {
      yield new Uint8Array([1, 2, 3]);
      firstWritten();
      await paused;
      yield new Uint8Array([4]);
    })(),
  );
  await started;
  const ours = (await readdir(dir.path)).filter((n) => n !== other);
  assert.equal(ours.length, 1);
  assert.match(ours[0]!, new RegExp(`^\\.ckpt\\.safetensors\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
  assert.deepEqual(removeTempFiles(dir.path), ours);
  assert.deepEqual(await readdir(dir.path), [other]);
  resume();
  // the write in flight cannot complete any more: its temp file is gone
  await assert.rejects(writing, CheckpointError);
  assert.deepEqual(await readdir(dir.path), [other]);
  assert.deepEqual(removeTempFiles(dir.join('missing')), []);
});
