import { COMPRESSIONS, type Compression } from './compression.js';
import { CollectiveConfigError } from './errors.js';
import { codecKernels } from './codec-kernels.js';
import { SIGN_BLOCK, signBlocks } from './sign-ef.js';

/**
 * Wire formats of one all-reduce chunk. Every message is an 8-byte header followed by the body:
 *
 *   header  u8 magic 0xB7 | u8 codec (its index in COMPRESSIONS) | u16 LE sender rank | u32 LE element count
 *   none    n × fp32 LE                              → 4n bytes
 *   fp16    n × IEEE half LE (round to nearest even) → 2n bytes
 *   sign-ef ⌈n/256⌉ fp32 LE scales, then ⌈n/8⌉ bytes of signs → 4·⌈n/256⌉ + ⌈n/8⌉ bytes
 *           (bit k of byte j is element 8j+k, 1 = non-negative; decoded value ±s_b, s_b =
 *            mean |v| over block b of 256 elements: 16 float64 lane sums, rounded to fp32;
 *            see codec-kernels.ts, whose native and JavaScript kernels agree bit for bit)
 *
 * So per element: none 32 bits, fp16 16, sign-ef 1.125 (+ 64 bits of header per chunk).
 */
export { COMPRESSIONS, type Compression };

export const HEADER_BYTES = 8;
const MAGIC = 0xb7;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Body bytes of a chunk of `n` elements. */
export function bodyBytes(codec: Compression, n: number): number {
  switch (codec) {
    case 'none':
      return 4 * n;
    case 'fp16':
      return 2 * n;
    case 'sign-ef':
      return 4 * signBlocks(n) + Math.ceil(n / 8);
  }
}

/** Total message bytes (header + body) of a chunk of `n` elements. */
export function messageBytes(codec: Compression, n: number): number {
  return HEADER_BYTES + bodyBytes(codec, n);
}

/**
 * Most elements of one sign-ef chunk, whatever the message limit. Scales are per 256-element
 * block and the kernels work block by block, so a chunk's size changes neither the values nor
 * the cache behaviour; 2^21 elements = 288 KiB messages, 5 messages per rank per step of the
 * example MLP instead of 23 at 2^18 (the 2-worker step time did not change measurably).
 */
export const SIGN_EF_MAX_CHUNK_ELEMENTS = 1 << 21;

/** Most sign-ef elements whose scales and bits fit in `body` bytes. */
function maxSignElements(body: number): number {
  const perBlock = 4 + SIGN_BLOCK / 8;
  const blocks = Math.max(0, Math.floor(body / perBlock));
  const rem = body - blocks * perBlock;
  return blocks * SIGN_BLOCK + (rem > 4 ? Math.min(SIGN_BLOCK - 1, (rem - 4) * 8) : 0);
}

/** Most elements one message of at most `maxMessageBytes` can carry. */
export function maxChunkElements(codec: Compression, maxMessageBytes: number): number {
  const body = maxMessageBytes - HEADER_BYTES;
  // sign-ef: whole blocks where more than one fits, so every chunk's blocks line up with the
  // bucket's (the same scales whatever the message limit)
  const sign = maxSignElements(body);
  const n =
    codec === 'none'
      ? Math.floor(body / 4)
      : codec === 'fp16'
        ? Math.floor(body / 2)
        : Math.min(sign > SIGN_BLOCK ? sign - (sign % SIGN_BLOCK) : sign, SIGN_EF_MAX_CHUNK_ELEMENTS);
  if (n < 1)
    throw new CollectiveConfigError(
      `a message limit of ${maxMessageBytes} bytes leaves no room for a ${codec} chunk (header ${HEADER_BYTES} bytes)`,
    );
  return n;
}

export interface ChunkHeader {
  codec: Compression;
  rank: number;
  count: number;
}

/** Parses a header; null when the message is not a well-formed chunk. */
export function readHeader(msg: Uint8Array): ChunkHeader | null {
  if (msg.byteLength < HEADER_BYTES || msg[0] !== MAGIC) return null;
  const codec = COMPRESSIONS[msg[1] as number];
  if (!codec) return null;
  const rank = (msg[2] as number) | ((msg[3] as number) << 8);
  const count = ((msg[4] as number) | ((msg[5] as number) << 8) | ((msg[6] as number) << 16) | ((msg[7] as number) << 24)) >>> 0;
  if (msg.byteLength !== messageBytes(codec, count)) return null;
  return { codec, rank, count };
}

function writeHeader(msg: Uint8Array, codec: Compression, rank: number, count: number): void {
  msg[0] = MAGIC;
  msg[1] = COMPRESSIONS.indexOf(codec);
  msg[2] = rank & 0xff;
  msg[3] = (rank >>> 8) & 0xff;
  msg[4] = count & 0xff;
  msg[5] = (count >>> 8) & 0xff;
  msg[6] = (count >>> 16) & 0xff;
  msg[7] = (count >>> 24) & 0xff;
}

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new CollectiveConfigError('the all-reduce wire format assumes a little-endian host');
}

/**
 * Encodes one chunk. For `sign-ef`, `residual` (same length as `values`) is the error-feedback
 * state: the chunk sent is sign(values + residual) × scale, and `residual` is overwritten with
 * (values + residual) − decoded. Other codecs ignore `residual`. With `decodedOut` (which may be
 * `values` itself), the decoded chunk is written there too, saving a decode pass. The message
 * ends with `trailerBytes` of room (zeros) for its MAC (auth.ts).
 */
export function encodeChunk(
  codec: Compression,
  rank: number,
  values: Float32Array,
  residual: Float32Array | null,
  decodedOut?: Float32Array,
  trailerBytes = 0,
): Uint8Array {
  assertLittleEndian();
  const n = values.length;
  const msg = new Uint8Array(messageBytes(codec, n) + trailerBytes);
  writeHeader(msg, codec, rank, n);
  if (codec === 'none') {
    new Float32Array(msg.buffer, HEADER_BYTES, n).set(values);
  } else if (codec === 'fp16') {
    codecKernels().halfEncode(values, msg.subarray(HEADER_BYTES, HEADER_BYTES + 2 * n), decodedOut ?? null);
  } else {
    if (!residual || residual.length !== n) throw new CollectiveConfigError('sign-ef encoding needs a residual of the chunk length');
    const scaleBytes = 4 * signBlocks(n);
    codecKernels().signEncode(
      values,
      residual,
      msg.subarray(HEADER_BYTES, HEADER_BYTES + scaleBytes),
      msg.subarray(HEADER_BYTES + scaleBytes, HEADER_BYTES + scaleBytes + Math.ceil(n / 8)),
      decodedOut ?? null,
    );
  }
  return msg;
}

/** A `none` message whose body the caller fills through `body` (e.g. reduces into it), with `trailerBytes` of room after it. */
export function newPlainMessage(rank: number, count: number, trailerBytes = 0): { msg: Uint8Array; body: Float32Array } {
  assertLittleEndian();
  const msg = new Uint8Array(messageBytes('none', count) + trailerBytes);
  writeHeader(msg, 'none', rank, count);
  return { msg, body: new Float32Array(msg.buffer, HEADER_BYTES, count) };
}

/**
 * Decodes a chunk (header already checked: `count` elements of `codec`) into `acc`: overwrites
 * it when `first`, otherwise adds element-wise in float32 (acc[i] = fround(acc[i] + decoded[i])).
 * A `divisor` other than 1 then divides the float32 sum (one rounding each, as two passes would).
 * Returns true when a decoded value was NaN or ±Inf (tested in the same pass).
 */
export function accumulateChunk(
  codec: Compression,
  msg: Uint8Array,
  count: number,
  acc: Float32Array,
  first: boolean,
  divisor = 1,
): boolean {
  assertLittleEndian();
  if (acc.length !== count) throw new RangeError(`chunk of ${count} elements into ${acc.length}`);
  const k = codecKernels();
  if (codec === 'none') return k.addF32(msg.subarray(HEADER_BYTES, HEADER_BYTES + 4 * count), acc, first, divisor);
  if (codec === 'fp16') return k.halfAccumulate(msg.subarray(HEADER_BYTES, HEADER_BYTES + 2 * count), acc, first, divisor);
  const bitsAt = HEADER_BYTES + 4 * signBlocks(count);
  return k.signAccumulate(msg.subarray(HEADER_BYTES, bitsAt), msg.subarray(bitsAt, bitsAt + Math.ceil(count / 8)), acc, first, divisor);
}

/**
 * The smallest magnitude a contribution of `codec` cannot carry as a finite value: fp16 rounds
 * |x| ≥ 65520 to ±Inf; fp32 and sign-ef carry every finite value. A rank checks its gradient
 * against it before sending (a member never puts NaN or ±Inf on the wire).
 */
export function wireLimit(codec: Compression): number {
  return codec === 'fp16' ? 65520 : Infinity;
}

/** The block scales of a sign-ef chunk message of `count` elements (a copy). */
export function signScales(msg: Uint8Array, count: number): Float32Array {
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  return Float32Array.from({ length: signBlocks(count) }, (_, b) => dv.getFloat32(HEADER_BYTES + 4 * b, true));
}
