// One of the two files that import the NATS client (the other: nats-object-store.ts, which connects through connectNats).
import { connect, type ConnectionOptions, type NatsConnection, type Subscription } from 'nats';
import { AsyncQueue } from '../util/queue.js';
import { TransportClosedError } from './errors.js';
import { mergeNatsAuth, natsServerList, redactNatsUrl, splitNatsServers, type NatsAuth } from './nats-url.js';
import type { Transport, TransportMessage, TransportSubscription } from './transport.js';

export interface NatsTransportOptions {
  /**
   * Server URLs or host:port, e.g. `nats://127.0.0.1:4222`, or a seed list of a cluster (an array,
   * or comma-separated); credentials in a url (`nats://user:pass@host`, `nats://token@host`) are
   * used unless set below.
   */
  servers: string | string[];
  /** Username for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  password?: string;
  /** Authentication token (exclusive with user/password). */
  token?: string;
  /** TLS files, passed through to the client; setting any enables TLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Give up connecting after this long. Default 5000. */
  connectTimeoutMs?: number;
  /** Deliver this connection's own publications back to it. Default false (saves the echo traffic). */
  echo?: boolean;
}

/** nats-server refused this client's credentials, or TLS to it failed; the message says which flags to check. */
export class NatsAuthError extends Error {
  readonly userFacing = true as const;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NatsAuthError';
  }
}

function describeAuth(auth: NatsAuth): string {
  if (auth.user !== undefined) return `the user/password of user '${auth.user}'`;
  if (auth.token !== undefined) return 'the token';
  return 'a client without credentials';
}

/** Connects to NATS and returns a Transport whose `maxPayload` is the server's `max_payload`. */
export async function connectNatsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  return new NatsTransport(await connectNats(options));
}

/**
 * Connects to NATS with the credentials of the url or of `options` (explicit ones win); a refused
 * credential or failed TLS handshake is a NatsAuthError naming the flags to check. `reconnect`
 * (default false: collectives detect a lost peer through their deadline) lets a long-lived client
 * such as the object store's ride out a server restart, moving to another server of the seed list.
 */
export async function connectNats(options: NatsTransportOptions & { reconnect?: boolean }): Promise<NatsConnection> {
  // a seed list (several servers of one cluster) may come as an array or comma-separated
  const split = splitNatsServers((Array.isArray(options.servers) ? options.servers : [options.servers]).flatMap(natsServerList));
  const fromUrl = split.auth;
  const explicit: NatsAuth = {
    ...(options.user !== undefined ? { user: options.user, password: options.password ?? '' } : {}),
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  };
  const auth = mergeNatsAuth(fromUrl, explicit);
  const servers = split.urls;
  const opts: ConnectionOptions = {
    servers,
    noEcho: options.echo !== true,
    timeout: options.connectTimeoutMs ?? 5000,
    // No reconnect inside a collective's client: a connection that drops closes, so the step in
    // flight fails at once (TransportClosedError) instead of waiting out its deadline over messages
    // lost while disconnected. The caller (ElasticGroup) opens a new connection, which tries every
    // server of the seed list once per attempt (waitOnFirstConnect off: a refused server is dropped
    // from that attempt's pool and the next one dialled), and the group re-forms over it. The
    // object store's client (`reconnect`) rides out a lost server instead.
    reconnect: options.reconnect === true,
    waitOnFirstConnect: false,
  };
  if (auth.user !== undefined) opts.user = auth.user;
  if (auth.password !== undefined) opts.pass = auth.password;
  if (auth.token !== undefined) opts.token = auth.token;
  if (options.name !== undefined) opts.name = options.name;
  if (auth.tls) opts.tls = { ...auth.tls };
  let nc: NatsConnection;
  try {
    nc = await connect(opts);
  } catch (err) {
    const where = `NATS ${servers.map(redactNatsUrl).join(', ')}`;
    const code = (err as { code?: string }).code;
    const message = (err as Error).message.replace(/\s+/g, ' ').trim();
    if (code === 'AUTHORIZATION_VIOLATION' || code === 'AUTHENTICATION_EXPIRED') {
      throw new NatsAuthError(
        `${where} refused ${describeAuth(auth)} (${message}): check --nats-user/--nats-pass, --nats-token ` +
          '(or BNN_NATS_USER/BNN_NATS_PASS/BNN_NATS_TOKEN) or the credentials in the --nats url',
        { cause: err },
      );
    }
    // A server that verifies client certificates may just reset a connection it refused (TLS 1.3
    // reports a missing or untrusted client certificate after the handshake): with TLS in use,
    // a reset while connecting is a TLS failure too.
    const tlsReset = auth.tls !== undefined && /ECONNRESET|EPIPE|socket hang up/i.test(`${code ?? ''} ${message}`);
    if (code === 'TLS' || tlsReset || /\btls\b|certificate|ssl|handshake|ENOENT|EACCES/i.test(message)) {
      throw new NatsAuthError(`${where}: TLS failed (${message}): check --nats-tls-ca/--nats-tls-cert/--nats-tls-key`, { cause: err });
    }
    throw err;
  }
  return nc;
}

export class NatsTransport implements Transport {
  readonly maxPayload: number;
  private readonly queues = new Set<AsyncQueue<TransportMessage>>();
  private closing: Promise<void> | null = null;

  constructor(private readonly nc: NatsConnection) {
    this.maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    void nc.closed().then((err) => {
      const cause = err ? new TransportClosedError(`NATS connection closed: ${err.message}`, { cause: err }) : undefined;
      for (const q of [...this.queues]) q.stop(cause);
    });
  }

  get isClosed(): boolean {
    return this.nc.isClosed();
  }

  /** The server of the seed list this connection reached (nats.js keeps no credentials in it). */
  get server(): string {
    return redactNatsUrl(this.nc.getServer());
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.nc.isClosed()) throw new TransportClosedError();
    this.nc.publish(subject, data);
  }

  subscribe(subject: string): TransportSubscription {
    if (this.nc.isClosed()) throw new TransportClosedError();
    const queue = new AsyncQueue<TransportMessage>();
    const sub: Subscription = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) queue.stop(new TransportClosedError(`NATS subscription ${subject} failed: ${err.message}`, { cause: err }));
        else queue.push({ subject: msg.subject, data: msg.data });
      },
    });
    this.queues.add(queue);
    queue.onStop(() => {
      this.queues.delete(queue);
      if (!sub.isClosed() && !this.nc.isClosed()) sub.unsubscribe();
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

  flushNow(): void {
    if (this.nc.isClosed()) return;
    // nats.js buffers publications until a microtask or 32 KiB; its protocol handler's
    // flushPending() writes the buffer to the socket at once (libuv tries the write synchronously).
    (this.nc as unknown as { protocol?: { flushPending?: () => void } }).protocol?.flushPending?.();
  }

  async flush(): Promise<void> {
    if (this.nc.isClosed()) throw new TransportClosedError();
    await this.nc.flush();
  }

  close(): Promise<void> {
    if (!this.closing) {
      for (const q of [...this.queues]) q.stop();
      this.closing = this.nc.isClosed() ? Promise.resolve() : this.nc.close().then(() => undefined);
    }
    return this.closing;
  }
}
