/**
 * Authentication of the collective's messages. Every message of a run (chunks of every phase,
 * the ready barrier's hello, the exact-sum sync groups) ends with a MAC keyed by a per-run
 * secret that only the run's members receive (the coordinator's ASSIGN). A message whose MAC
 * fails is dropped before anything reads it, and counted.
 *
 *   message = payload | nonce (12 bytes, random) | tag (16 bytes)
 *   tag     = GMAC: AES-256-GCM(key, nonce) with an empty plaintext and
 *             additional data = u32 LE byte length of the subject | subject | payload
 *   key     = HKDF-SHA256(run secret, info = "bnn dataplane v1" 0 <group> 0 <generation> 0 <step | "hello">)
 *
 * What it covers: the subject names the run (the group token: `<run>` or `<run>-sync<k>`),
 * generation, phase, step, shard and chunk; the payload's header the sender rank, wire format
 * and element count; then every payload byte. A message moved to another subject (a replay on
 * a later step, another generation, another chunk) or altered in one bit fails.
 *
 * Why GMAC: Node's AES-GCM runs on AES-NI and carry-less multiply (VAES/VPCLMULQDQ where the
 * CPU has them); over additional data only it measured 13 GB/s here, against 1.7 GB/s for
 * HMAC-SHA256 and 11 GB/s for Poly1305 (chacha20-poly1305, additional data only), so the
 * all-reduce of 16 MiB spends a few percent of its time on it (docs/benchmarks.md).
 *
 * Nonces: GMAC must never see one (key, nonce) pair with two different messages (that reveals
 * its hash key). Nonces are 96 random bits and every key serves one step of one generation of
 * one group (a few thousand messages at most), so a repeat has a probability of about
 * q²/2⁹⁷ — nothing the protocol's own bookkeeping has to guarantee (a re-encoded resend stays safe).
 *
 * Every member holds the same secret: this keeps out processes that are not members (they may
 * hold the NATS credentials), not a member that lies about its rank.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { CollectiveConfigError } from './errors.js';

/** Bytes of a run secret. */
export const RUN_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes every authenticated message carries after its payload (nonce and tag). */
export const MAC_BYTES = NONCE_BYTES + TAG_BYTES;

/** Subjects named per step in a rejection report (then only counted), and per report in all. */
const SUBJECTS_PER_STEP = 3;
const SUBJECTS_PER_REPORT = 12;
/** Step keys kept per group (the current step, the buffered ones ahead, the hello key). */
const KEYS_KEPT = 8;
const INFO = 'bnn dataplane v1';

/** A new run secret (the coordinator makes one per run and per resume). */
export function newRunKey(): Uint8Array {
  return randomBytes(RUN_KEY_BYTES);
}

/** Messages dropped because their MAC failed, since the previous `takeRejections()`. */
export interface Rejections {
  count: number;
  /** The first few subjects of each step, a dozen at most. */
  subjects: string[];
}

/** One run's secret: derives the keys of its groups and keeps the log of rejected messages. */
export class RunAuth {
  private readonly secret: Buffer;
  private count = 0;
  private subjects: string[] = [];
  private readonly perStep = new Map<string, number>();

  constructor(runKey: Uint8Array) {
    if (!(runKey instanceof Uint8Array) || runKey.byteLength !== RUN_KEY_BYTES)
      throw new CollectiveConfigError(
        `run key: expected ${RUN_KEY_BYTES} bytes, got ${runKey instanceof Uint8Array ? runKey.byteLength : typeof runKey}` +
          ' (a coordinator that sends none is older than this worker)',
      );
    this.secret = Buffer.from(runKey);
  }

  /** Whether `runKey` is this run's secret (constant time). */
  holds(runKey: Uint8Array): boolean {
    return runKey.byteLength === RUN_KEY_BYTES && timingSafeEqual(this.secret, runKey);
  }

  /** The MAC of one generation of one group (`group` is the subject's run token). */
  forGroup(group: string, generation: number): GroupMac {
    return new GroupMac(
      (step) => this.derive(group, generation, step),
      (subject, step) => this.record(subject, group, generation, step),
    );
  }

  /** Rejections since the previous call (then forgotten). */
  takeRejections(): Rejections {
    const r = { count: this.count, subjects: this.subjects };
    this.count = 0;
    this.subjects = [];
    this.perStep.clear();
    return r;
  }

  private derive(group: string, generation: number, step: number | null): KeyObject {
    const info = `${INFO}\0${group}\0${generation}\0${step === null ? 'hello' : step}`;
    return createSecretKey(Buffer.from(hkdfSync('sha256', this.secret, Buffer.alloc(0), info, 32)));
  }

  private record(subject: string, group: string, generation: number, step: number | null): void {
    this.count++;
    const where = `${group}.${generation}.${step ?? 'hello'}`;
    const named = this.perStep.get(where) ?? 0;
    if (named >= SUBJECTS_PER_STEP || this.subjects.length >= SUBJECTS_PER_REPORT) return;
    this.perStep.set(where, named + 1);
    this.subjects.push(subject);
  }
}

/** Seals and opens the messages of one generation of one group; a step's key is derived once. */
export class GroupMac {
  private readonly keys = new Map<number, KeyObject>();

  constructor(
    private readonly derive: (step: number | null) => KeyObject,
    private readonly rejected: (subject: string, step: number | null) => void,
  ) {}

  private key(step: number | null): KeyObject {
    const slot = step ?? -1;
    let k = this.keys.get(slot);
    if (!k) {
      k = this.derive(step);
      this.keys.set(slot, k);
      if (this.keys.size > KEYS_KEPT) this.keys.delete(this.keys.keys().next().value as number);
    }
    return k;
  }

  /** Writes nonce and tag into the last MAC_BYTES of `msg` (the payload is everything before them). */
  seal(step: number | null, subject: string, msg: Uint8Array): void {
    const end = msg.byteLength - MAC_BYTES;
    if (end < 0) throw new RangeError(`a message of ${msg.byteLength} bytes has no room for its MAC`);
    const nonce = msg.subarray(end, end + NONCE_BYTES);
    randomFillSync(nonce);
    const c = createCipheriv('aes-256-gcm', this.key(step), nonce, { authTagLength: TAG_BYTES });
    c.setAAD(subjectPrefix(subject));
    c.setAAD(msg.subarray(0, end));
    c.final();
    msg.set(c.getAuthTag(), end + NONCE_BYTES);
  }

  /**
   * The payload of an authentic message (a view of `msg`), or null: the message was forged,
   * replayed onto another subject or altered, and has been recorded as rejected. OpenSSL compares
   * the tags in constant time.
   */
  open(step: number | null, subject: string, msg: Uint8Array): Uint8Array | null {
    const end = msg.byteLength - MAC_BYTES;
    if (end >= 0) {
      const d = createDecipheriv('aes-256-gcm', this.key(step), msg.subarray(end, end + NONCE_BYTES), { authTagLength: TAG_BYTES });
      d.setAuthTag(msg.subarray(end + NONCE_BYTES));
      d.setAAD(subjectPrefix(subject));
      d.setAAD(msg.subarray(0, end));
      try {
        d.final();
        return msg.subarray(0, end);
      } catch {
        // the tag did not match
      }
    }
    this.rejected(subject, step);
    return null;
  }
}

/** The subject with its length in front, so subject and payload cannot trade bytes. */
function subjectPrefix(subject: string): Buffer {
  const s = Buffer.from(subject, 'utf8');
  const out = Buffer.allocUnsafe(4 + s.byteLength);
  out.writeUInt32LE(s.byteLength, 0);
  s.copy(out, 4);
  return out;
}
