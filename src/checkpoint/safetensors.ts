import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CheckpointError } from './errors.js';

/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}` padded with spaces to a multiple of 8, then the
 * tensors' little-endian bytes, contiguous, with no gaps. Offsets are relative to the
 * first byte after the header.
 */

export const DTYPES = {
  F64: { bytes: 8, array: Float64Array },
  F32: { bytes: 4, array: Float32Array },
  /** Raw IEEE half bits (Node 20 has no Float16Array). */
  F16: { bytes: 2, array: Uint16Array },
  /** Raw bfloat16 bits. */
  BF16: { bytes: 2, array: Uint16Array },
  I64: { bytes: 8, array: BigInt64Array },
  I32: { bytes: 4, array: Int32Array },
  I16: { bytes: 2, array: Int16Array },
  I8: { bytes: 1, array: Int8Array },
  U64: { bytes: 8, array: BigUint64Array },
  U32: { bytes: 4, array: Uint32Array },
  U16: { bytes: 2, array: Uint16Array },
  U8: { bytes: 1, array: Uint8Array },
  /** One byte per element, 0 or 1. */
  BOOL: { bytes: 1, array: Uint8Array },
} as const;

export type Dtype = keyof typeof DTYPES;

export type TensorData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

export interface Tensor {
  dtype: Dtype;
  shape: readonly number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
  sha256: string;
  bytes: number;
}

export interface ReadSafetensorsOptions {
  /** Hex sha256 the whole file must have (as recorded in the checkpoints table). */
  expectedSha256?: string;
}

/** Largest header accepted on read, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

if (endianness() !== 'LE') {
  // Typed arrays use host byte order and the format is little-endian.
  throw new Error('safetensors: big-endian hosts are not supported');
}

/**
 * The bytes of a safetensors file as a list of chunks: the length prefix, the header, then each
 * tensor's own bytes (views of the arrays, not copies), in file order. Tensors are laid out by
 * element size (largest first) then name, so every tensor's bytes are aligned to its element size.
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, Tensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array[] {
  for (const [name, t] of Object.entries(tensors)) checkTensor(name, t);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`safetensors metadata "${k}" must be a string`);
  }
  const names = Object.keys(tensors).sort((a, b) => {
    const d = DTYPES[tensors[b]!.dtype].bytes - DTYPES[tensors[a]!.dtype].bytes;
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const length = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + length] };
    if (length > 0) chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, length));
    offset += length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return [prefix, headerBytes, ...chunks];
}

/**
 * Writes tensors atomically: a temp file in the same directory, fsync, rename, fsync of
 * the directory. A crash leaves the old file or the new one, never a torn one.
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, Tensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<{ sha256: string; bytes: number }> {
  return writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** The end of the name of a temp file `writeFileAtomic` writes (`.<name>.<pid>.<hex>.tmp`). */
const tempSuffix = (pid: number, tag: string) => `.${pid}.${tag}.tmp`;

/**
 * Deletes the temp files that writes of process `pid` left in `dir` (a process leaving at once,
 * mid-write); synchronous, so a signal handler can call it just before exiting. Returns their
 * names; never throws (a missing directory has none).
 */
export function removeTempFiles(dir: string, pid: number = process.pid): string[] {
  const pattern = new RegExp(`^\\..+\\.${pid}\\.[0-9a-f]+\\.tmp$`);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => pattern.test(n));
  } catch {
    return [];
  }
  return names.filter((n) => {
    try {
      unlinkSync(join(dir, n));
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Writes `chunks` to `path` as they come, atomically (temp file, fsync, rename, fsync of the
 * directory), hashing on the way: sha256 and size of what was written. CheckpointError naming
 * the file when it fails (the temp file removed).
 */
export async function writeFileAtomic(
  path: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<{ sha256: string; bytes: number }> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}${tempSuffix(process.pid, randomBytes(4).toString('hex'))}`);
  const hash = createHash('sha256');
  let bytes = 0;
  let handle: FileHandle | undefined;
  try {
    await mkdir(dir, { recursive: true });
    handle = await open(tmp, 'wx');
    for await (const buf of chunks) {
      await handle.write(buf);
      hash.update(buf);
      bytes += buf.length;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw CheckpointError.at(path, `write failed: ${(err as Error).message}`, { cause: err });
  }
  await syncDir(dirname(path));
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Reads and fully validates a safetensors file: header bounds and JSON, dtype names,
 * shapes against byte sizes, offsets in bounds, without overlaps or gaps, and the hash.
 * Tensors are returned as fresh, aligned typed arrays.
 */
export async function readSafetensors(path: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (err) {
    throw CheckpointError.at(path, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  const sha256 = createHash('sha256').update(file).digest('hex');
  if (options.expectedSha256 !== undefined && options.expectedSha256.toLowerCase() !== sha256) {
    throw CheckpointError.at(path, `sha256 mismatch: expected ${options.expectedSha256}, file has ${sha256}`);
  }
  const { tensors, metadata } = parseSafetensors(file, path);
  return { tensors, metadata, sha256, bytes: file.length };
}

/** Parses safetensors bytes already in memory; `source` names them in errors. */
export function parseSafetensors(file: Buffer, source: string): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const fail = (problem: string): never => {
    throw CheckpointError.at(source, problem);
  };
  if (file.length < 8) fail(`truncated: ${file.length} bytes, less than the 8-byte header length`);
  const n = file.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLength = Number(n);
  if (8 + headerLength > file.length) {
    fail(`truncated: header claims ${headerLength} bytes but only ${file.length - 8} follow`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + headerLength)));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = file.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    entries.push(parseEntry(name, value, fail));
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin < cursor) fail(`tensor "${e.name}" bytes [${e.begin}, ${e.end}) overlap the previous tensor (ends at ${cursor})`);
    if (e.begin > cursor) fail(`gap in data: bytes [${cursor}, ${e.begin}) belong to no tensor`);
    if (e.end > dataLength)
      fail(`truncated: tensor "${e.name}" ends at byte ${e.end} of data but only ${dataLength} bytes follow the header`);
    cursor = e.end;
  }
  if (cursor !== dataLength) fail(`${dataLength - cursor} trailing bytes after the last tensor`);

  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const spec = DTYPES[e.dtype];
    const bytes = new Uint8Array(e.end - e.begin);
    bytes.set(file.subarray(dataStart + e.begin, dataStart + e.end));
    const data = new spec.array(bytes.buffer, 0, (e.end - e.begin) / spec.bytes) as TensorData;
    if (e.dtype === 'BOOL' && (data as Uint8Array).some((b) => b > 1))
      fail(`tensor "${e.name}" is BOOL but holds a byte other than 0 or 1`);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

function parseEntry(
  name: string,
  value: unknown,
  fail: (problem: string) => never,
): { name: string; dtype: Dtype; shape: number[]; begin: number; end: number } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`tensor "${name}" entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) {
    fail(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)} (allowed: ${Object.keys(DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`tensor "${name}" shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(`tensor "${name}" data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * DTYPES[dtype as Dtype].bytes;
  if (end - begin !== expected) {
    fail(`tensor "${name}" is ${dtype}${JSON.stringify(shape)} (${expected} bytes) but data_offsets span ${end - begin} bytes`);
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

function checkTensor(name: string, t: Tensor): void {
  if (name === '' || name === METADATA_KEY) throw new TypeError(`invalid safetensors tensor name ${JSON.stringify(name)}`);
  const spec = DTYPES[t.dtype];
  if (!spec) throw new TypeError(`tensor "${name}": unknown dtype ${String(t.dtype)}`);
  if (!(t.data instanceof spec.array)) {
    throw new TypeError(`tensor "${name}": dtype ${t.dtype} needs a ${spec.array.name}, got ${t.data.constructor.name}`);
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TypeError(`tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
  }
  const elements = t.shape.reduce((a, b) => a * b, 1);
  if (elements !== t.data.length) {
    throw new TypeError(`tensor "${name}": shape ${JSON.stringify(t.shape)} has ${elements} elements, data has ${t.data.length}`);
  }
  if (t.dtype === 'BOOL' && (t.data as Uint8Array).some((b) => b > 1)) {
    throw new TypeError(`tensor "${name}": BOOL data must be 0 or 1`);
  }
}

/** fsync a directory so a rename in it survives a crash; not supported everywhere. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
