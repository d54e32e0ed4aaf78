import { AsyncQueue } from '../util/queue.js';
import { TransportClosedError } from './errors.js';

/** One message as delivered to a subscriber. `data` is owned by the receiver. */
export interface TransportMessage {
  subject: string;
  data: Uint8Array;
}

/** A subscription: an async iterator of messages, ended by an idempotent `stop(err?)`. */
export interface TransportSubscription extends AsyncIterable<TransportMessage> {
  readonly subject: string;
  /** Unsubscribes and ends the iteration (rethrowing `err` to the consumer, if given). Idempotent. */
  stop(err?: Error): void;
  readonly stopped: boolean;
}

/**
 * The publish/subscribe surface the collectives need. Subjects are dot-separated tokens;
 * subscriptions accept NATS wildcards (`*` one token, `>` the rest). Implementations deliver
 * messages of one publisher to one subscription in publish order, and do not deliver a
 * connection's own publications back to it (NATS `noEcho`).
 */
export interface Transport {
  /** Largest message body, in bytes, the broker accepts (NATS server `max_payload`). */
  readonly maxPayload: number;
  readonly isClosed: boolean;
  /**
   * Queues a message. The transport may keep a reference to `data` until it has been written
   * out (nats.js does), so the caller must not modify it afterwards. Throws once closed.
   */
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string): TransportSubscription;
  /** Resolves once the broker has processed everything sent so far (subscriptions included). */
  flush(): Promise<void>;
  /**
   * Hands publications buffered by the client to the operating system now, synchronously, so
   * they travel while this thread goes on computing (a gradient bucket published from inside
   * the backward pass). Optional: without it they leave when the event loop next runs.
   */
  flushNow?(): void;
  /** Stops every subscription and closes the connection; idempotent. */
  close(): Promise<void>;
  /** The broker this connection reached (of a cluster's seed list), without credentials; for logs. Optional. */
  readonly server?: string;
}

/** True when `subject` (no wildcards) matches `pattern` (NATS `*` and `>` wildcards). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}

interface LoopbackSub {
  owner: LoopbackTransport;
  pattern: string;
  queue: AsyncQueue<TransportMessage>;
}

interface Pending {
  from: LoopbackTransport;
  subject: string;
  data: Uint8Array;
}

export interface LoopbackHubOptions {
  /** Body size limit reported as `maxPayload` and enforced on publish. Default 1 MiB. */
  maxPayload?: number;
  /**
   * When given, messages published within one tick are delivered in an order shuffled by this
   * seed (per-publisher order is then NOT kept): for testing order independence.
   */
  shuffleSeed?: number;
}

/** An in-memory broker: transports connected to one hub see each other's messages. */
export class LoopbackHub {
  readonly maxPayload: number;
  private readonly subs = new Set<LoopbackSub>();
  private pending: Pending[] = [];
  private scheduled = false;
  private rngState: number;
  private readonly shuffle: boolean;

  constructor(options: LoopbackHubOptions = {}) {
    this.maxPayload = options.maxPayload ?? 1024 * 1024;
    this.shuffle = options.shuffleSeed !== undefined;
    this.rngState = (options.shuffleSeed ?? 1) >>> 0 || 1;
  }

  connect(): LoopbackTransport {
    return new LoopbackTransport(this);
  }

  /** Subscriptions currently registered, over all transports. */
  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** @internal */
  addSub(sub: LoopbackSub): void {
    this.subs.add(sub);
  }

  /** @internal */
  removeSub(sub: LoopbackSub): void {
    this.subs.delete(sub);
  }

  /** @internal */
  enqueue(p: Pending): void {
    this.pending.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.deliver());
    }
  }

  /** @internal resolves after everything enqueued so far has been delivered. */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
  }

  private nextRandom(): number {
    // xorshift32: deterministic shuffles per seed
    let x = this.rngState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rngState = x >>> 0;
    return this.rngState / 0x100000000;
  }

  private deliver(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (this.shuffle) {
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(this.nextRandom() * (i + 1));
        const t = batch[i] as Pending;
        batch[i] = batch[j] as Pending;
        batch[j] = t;
      }
    }
    for (const p of batch) {
      for (const sub of this.subs) {
        if (sub.owner === p.from || !subjectMatches(sub.pattern, p.subject)) continue;
        sub.queue.push({ subject: p.subject, data: new Uint8Array(p.data) });
      }
    }
  }
}

/** One connection to a LoopbackHub. */
export class LoopbackTransport implements Transport {
  private closed = false;
  private readonly mySubs = new Set<LoopbackSub>();

  constructor(private readonly hub: LoopbackHub) {}

  get maxPayload(): number {
    return this.hub.maxPayload;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.closed) throw new TransportClosedError();
    if (data.byteLength > this.hub.maxPayload) {
      throw new RangeError(`loopback: message of ${data.byteLength} bytes exceeds max_payload ${this.hub.maxPayload}`);
    }
    this.hub.enqueue({ from: this, subject, data: new Uint8Array(data) });
  }

  subscribe(subject: string): TransportSubscription {
    if (this.closed) throw new TransportClosedError();
    const queue = new AsyncQueue<TransportMessage>();
    const sub: LoopbackSub = { owner: this, pattern: subject, queue };
    this.hub.addSub(sub);
    this.mySubs.add(sub);
    queue.onStop(() => {
      this.hub.removeSub(sub);
      this.mySubs.delete(sub);
    });
    return {
      subject,
      stop: (err?: Error) => queue.stop(err),
      get stopped() {
        return queue.stopped;
      },
      [Symbol.asyncIterator]: () => queue,
    };
  }

  async flush(): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    await this.hub.settle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of [...this.mySubs]) sub.queue.stop();
  }
}
