// The one file that imports @grpc/grpc-js: the coordinator service over gRPC (server and
// client), with the cluster token checked on every call, and beside it the standard health
// service (`grpc.health.v1.Health`), which answers without a token.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createHash, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { packageRoot } from '../config/package-info.js';
import { isRefusal, RpcCode, RpcError, RpcRefusedError, RpcUnauthenticatedError, RpcUnavailableError, rpcCodeName } from './errors.js';
import { COORDINATOR_SERVICE_NAME, HealthStatuses, type WatchedStatus } from './health.js';
import { probeTls, type ClientTls, type ServerTls } from './tls.js';
import type {
  Ack,
  Assignment,
  AssignmentsRequest,
  CallContext,
  CheckpointReport,
  ClusterEvent,
  CoordinatorHandlers,
  HeartbeatReply,
  HeartbeatRequest,
  MetricsReport,
  RegisterReply,
  RegisterRequest,
  ResumeRunRequest,
  RunInfo,
  RunRef,
  SubmitRunRequest,
  WatchRequest,
} from './types.js';

/** Metadata key carrying `Bearer <token>`. */
export const TOKEN_METADATA_KEY = 'authorization';

export function protoPath(): string {
  return join(packageRoot(), 'proto', 'bnn', 'v1', 'coordinator.proto');
}

/** The standard gRPC health checking protocol (`grpc.health.v1`), as Kubernetes' gRPC probes and grpc_health_probe speak it. */
export function healthProtoPath(): string {
  return join(packageRoot(), 'proto', 'grpc', 'health', 'v1', 'health.proto');
}

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

let serviceCtor: grpc.ServiceClientConstructor | null = null;
function coordinatorService(): grpc.ServiceClientConstructor {
  if (!serviceCtor) {
    const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as { bnn: { v1: { Coordinator: grpc.ServiceClientConstructor } } };
    serviceCtor = pkg.bnn.v1.Coordinator;
  }
  return serviceCtor;
}

let healthCtor: grpc.ServiceClientConstructor | null = null;
function healthService(): grpc.ServiceClientConstructor {
  if (!healthCtor) {
    const def = protoLoader.loadSync(healthProtoPath(), LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    healthCtor = pkg.grpc.health.v1.Health;
  }
  return healthCtor;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function tokenOk(metadata: grpc.Metadata, expected: Buffer): 'ok' | 'missing' | 'wrong' {
  const value = metadata.get(TOKEN_METADATA_KEY)[0];
  if (typeof value !== 'string' || value === '') return 'missing';
  const token = value.startsWith('Bearer ') ? value.slice(7) : value;
  return timingSafeEqual(digest(token), expected) ? 'ok' : 'wrong';
}

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof RpcError) return { code: err.code as number, details: err.message, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: message, message };
}

export interface RpcServerOptions {
  /** The cluster token every call must carry. */
  token: string;
  /** Where rejected calls and handler failures are logged. */
  log?: (line: string) => void;
  /** Serve TLS with this material (from `loadServerTls`); with `ca`, client certificates are required (mutual TLS). */
  tls?: ServerTls;
}

/**
 * A built, not yet bound server. Its health service reports NOT_SERVING until `listen` bound the
 * port, SERVING from then on, and NOT_SERVING again from `drain` (or `shutdown`).
 */
export interface RpcServer {
  /** Binds `host:port` (0: a free port), with TLS when the options carry it, and starts serving; resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  /** Whether the port is bound and the server is neither draining nor shut down. */
  readonly accepting: boolean;
  /** Reports NOT_SERVING from now on (health Check and Watch) while still serving calls: the first step of a shutdown. Idempotent. */
  drain(): void;
  /** Drains, stops accepting calls, ends open streams after `graceMs`, then forces the rest. Idempotent. */
  shutdown(graceMs?: number): Promise<void>;
}

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>;

function contextOf(call: AnyCall): { ctx: CallContext; abort: AbortController } {
  const abort = new AbortController();
  const events = call as unknown as NodeJS.EventEmitter;
  events.on('cancelled', () => abort.abort());
  events.on('close', () => abort.abort());
  return { ctx: { peer: call.getPeer(), signal: abort.signal }, abort };
}

/** Wraps `handlers` in a gRPC server that checks the token first (UNAUTHENTICATED otherwise). */
export function createRpcServer(handlers: CoordinatorHandlers, options: RpcServerOptions): RpcServer {
  if (options.token === '') throw new RpcError(RpcCode.INVALID_ARGUMENT, 'the cluster token must not be empty');
  const expected = digest(options.token);
  const log = options.log ?? (() => undefined);
  const server = new grpc.Server();

  const authorize = (method: string, call: AnyCall): grpc.ServiceError | null => {
    const verdict = tokenOk(call.metadata, expected);
    if (verdict === 'ok') return null;
    log(`rejected ${method} from ${call.getPeer()}: ${verdict} cluster token`);
    const details = `${verdict} cluster token`;
    return Object.assign(new Error(details), { code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() });
  };
  const failed = (method: string, err: unknown): Partial<grpc.ServiceError> => {
    if (!(err instanceof RpcError)) log(`${method} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return toServiceError(err);
  };

  const unary =
    <Q, R>(method: string, fn: (req: Q, ctx: CallContext) => Promise<R>): grpc.handleUnaryCall<Q, R> =>
    (call, callback) => {
      const denied = authorize(method, call);
      if (denied) return callback(denied);
      const { ctx } = contextOf(call);
      fn(call.request, ctx).then(
        (r) => callback(null, r),
        (err) => callback(failed(method, err)),
      );
    };

  const serverStream =
    <Q, R>(method: string, fn: (req: Q, ctx: CallContext) => AsyncIterable<R>): grpc.handleServerStreamingCall<Q, R> =>
    (call) => {
      const denied = authorize(method, call);
      if (denied) {
        call.emit('error', denied);
        return;
      }
      const { ctx } = contextOf(call);
      const iterator = fn(call.request, ctx)[Symbol.asyncIterator]();
      ctx.signal.addEventListener('abort', () => void iterator.return?.(), { once: true });
      void (async () => {
        try {
          for (;;) {
            const r = await iterator.next();
            if (r.done || ctx.signal.aborted) break;
            call.write(r.value);
          }
          if (!ctx.signal.aborted) call.end();
        } catch (err) {
          if (!ctx.signal.aborted) call.emit('error', failed(method, err));
        }
      })();
    };

  const heartbeat: grpc.handleClientStreamingCall<HeartbeatRequest, HeartbeatReply> = (call, callback) => {
    const denied = authorize('Heartbeat', call);
    if (denied) {
      call.resume();
      return callback(denied);
    }
    const { ctx } = contextOf(call);
    handlers.heartbeat(call as AsyncIterable<HeartbeatRequest>, ctx).then(
      (r) => callback(null, r),
      (err) => callback(failed('Heartbeat', err)),
    );
  };

  server.addService(coordinatorService().service, {
    Register: unary('Register', handlers.register.bind(handlers)),
    Heartbeat: heartbeat,
    Assignments: serverStream('Assignments', handlers.assignments.bind(handlers)),
    ReportMetrics: unary('ReportMetrics', handlers.reportMetrics.bind(handlers)),
    ReportCheckpoint: unary('ReportCheckpoint', handlers.reportCheckpoint.bind(handlers)),
    SubmitRun: unary('SubmitRun', handlers.submitRun.bind(handlers)),
    ResumeRun: unary('ResumeRun', handlers.resumeRun.bind(handlers)),
    CancelRun: unary('CancelRun', handlers.cancelRun.bind(handlers)),
    GetRun: unary('GetRun', handlers.getRun.bind(handlers)),
    WatchCluster: serverStream('WatchCluster', handlers.watchCluster.bind(handlers)),
  } as grpc.UntypedServiceImplementation);

  const health = new HealthStatuses([COORDINATOR_SERVICE_NAME]);
  server.addService(healthService().service, healthHandlers(health));
  return serverLifecycle(server, health, options);
}

type HealthRequest = { service: string };
type HealthResponse = { status: WatchedStatus };

/**
 * `grpc.health.v1.Health` over `health`. No token: a probe (kubelet, grpc_health_probe) carries
 * none, and the answer reveals nothing but a status. Not logged: probes come every few seconds.
 */
function healthHandlers(health: HealthStatuses): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<HealthRequest, HealthResponse> = (call, callback) => {
    const status = health.get(call.request.service);
    if (status !== undefined) return callback(null, { status });
    const details = `unknown service '${call.request.service}': this server serves '' and '${COORDINATOR_SERVICE_NAME}'`;
    return callback({ code: grpc.status.NOT_FOUND, details, message: details });
  };
  const watch: grpc.handleServerStreamingCall<HealthRequest, HealthResponse> = (call) => {
    const queue = health.watch(call.request.service);
    call.on('cancelled', () => queue.stop());
    call.on('close', () => queue.stop());
    void (async () => {
      for await (const status of queue) call.write({ status });
      if (!call.cancelled) call.end();
    })();
  };
  return { Check: check, Watch: watch } as grpc.UntypedServiceImplementation;
}

function serverCredentials(tls: ServerTls | undefined): grpc.ServerCredentials {
  return tls
    ? grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== null)
    : grpc.ServerCredentials.createInsecure();
}

/**
 * `listen` (TLS as `options.tls` says when it binds), `drain` and an idempotent `shutdown`, for a
 * server whose services are added; `health` follows them.
 */
function serverLifecycle(server: grpc.Server, health: HealthStatuses, options: RpcServerOptions): RpcServer {
  let stopping: Promise<void> | null = null;
  let bound = false;
  let draining = false;
  const drain = () => {
    draining = true;
    health.setAll('NOT_SERVING');
  };
  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        const credentials = serverCredentials(options.tls);
        server.bindAsync(`${host}:${port}`, credentials, (err, boundPort) => {
          if (err) return reject(new RpcUnavailableError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
          bound = true;
          if (!draining) health.setAll('SERVING');
          resolve(boundPort);
        });
      });
    },
    get accepting() {
      return bound && !draining;
    },
    drain,
    shutdown(graceMs = 1000) {
      drain();
      // Watch streams end with the NOT_SERVING just sent, rather than hold the shutdown for its grace.
      health.close();
      stopping ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return stopping;
    },
  };
}

// ---- client ----

/** A server stream on the client side: iterate it; `cancel()` ends it (the iteration then just stops). */
export interface RpcStream<T> extends AsyncIterable<T> {
  cancel(): void;
}

/** The client end of the Heartbeat stream. */
export interface HeartbeatSender {
  send(req: HeartbeatRequest): void;
  /** Closes the stream and resolves with the reply. */
  end(): Promise<HeartbeatReply>;
  /** Resolves when the call ends (rejects on a failure, e.g. the coordinator went away). */
  readonly closed: Promise<HeartbeatReply>;
}

export interface CoordinatorClient {
  register(req: Partial<RegisterRequest>): Promise<RegisterReply>;
  heartbeat(): HeartbeatSender;
  assignments(req: AssignmentsRequest): RpcStream<Assignment>;
  reportMetrics(req: Partial<MetricsReport>): Promise<Ack>;
  reportCheckpoint(req: Partial<CheckpointReport>): Promise<Ack>;
  submitRun(req: Partial<SubmitRunRequest>): Promise<RunInfo>;
  resumeRun(req: Partial<ResumeRunRequest> & RunRef): Promise<RunInfo>;
  cancelRun(req: RunRef): Promise<RunInfo>;
  getRun(req: RunRef): Promise<RunInfo>;
  watchCluster(req: Partial<WatchRequest>): RpcStream<ClusterEvent>;
  /** Resolves once connected; RpcUnavailableError after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void>;
  close(): void;
}

export interface CoordinatorClientOptions {
  /** The cluster token; empty sends none. */
  token: string;
  /** Deadline of unary calls. Default 30 s. */
  callTimeoutMs?: number;
  /** Connect over TLS with this material (from `loadClientTls`); absent: plaintext. */
  tls?: ClientTls;
}

/** What a failed TLS connection most likely means (a plaintext client is diagnosed by `probeTls` instead). */
function tlsHint(details: string): string {
  if (/certificate required|alert bad certificate|alert unknown ca|peer did not return a certificate/i.test(details)) {
    return ' (the coordinator requires a client certificate signed by its CA: pass --tls-cert and --tls-key)';
  }
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long|unknown protocol/i.test(details)) {
    return ' (the coordinator does not speak TLS: drop the --tls* flags, or start it with --tls-cert/--tls-key)';
  }
  if (/self.signed|unable to (verify|get)|certificate|altnames|Hostname\/IP/i.test(details)) {
    return " (the coordinator's certificate is not trusted: check --tls-ca, or --tls-server-name when the address differs from the certificate's names)";
  }
  return '';
}

function fromServiceError(err: grpc.ServiceError, address: string, tls = false): RpcError {
  if (err.code === grpc.status.UNAUTHENTICATED) return new RpcUnauthenticatedError(`coordinator ${address}: ${err.details}`);
  if (err.code === grpc.status.UNAVAILABLE) {
    const details = err.details.replace(/\s*Resolution note:\s*$/, '');
    return new RpcUnavailableError(`coordinator ${address} is unavailable: ${details}${tls ? tlsHint(details) : ''}`, { cause: err });
  }
  const code = (Object.values(RpcCode) as number[]).includes(err.code) ? (err.code as RpcCode) : RpcCode.UNKNOWN;
  const message = `coordinator ${address}: ${rpcCodeName(code)}: ${err.details}`;
  return isRefusal(code) ? new RpcRefusedError(code, message, { cause: err }) : new RpcError(code, message, { cause: err });
}

type Callback<R> = (err: grpc.ServiceError | null, res?: R) => void;
type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function channelCredentials(tls: ClientTls | undefined): { credentials: grpc.ChannelCredentials; channelOptions: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), channelOptions: {} };
  const channelOptions: grpc.ChannelOptions = tls.serverName
    ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName }
    : {};
  return { credentials: grpc.credentials.createSsl(tls.ca, tls.key, tls.cert), channelOptions };
}

/** ResumeRun's deadline: the coordinator reads and hashes the run's checkpoints (maybe from the object store) before it answers. */
const RESUME_TIMEOUT_MS = 15 * 60_000;

/** A client for the coordinator at `host:port` (TLS when `options.tls` is set). Does not connect until the first call. */
export function connectCoordinator(address: string, options: CoordinatorClientOptions): CoordinatorClient {
  const Ctor = coordinatorService();
  const { credentials, channelOptions } = channelCredentials(options.tls);
  const raw = new Ctor(address, credentials, channelOptions) as unknown as RawClient;
  const tls = options.tls !== undefined;
  // A plaintext client that cannot connect asks whether the server wants TLS, to say so.
  const diagnosed = async (err: RpcError): Promise<RpcError> => {
    if (tls || !(err instanceof RpcUnavailableError) || !(await probeTls(address, 1500))) return err;
    return new RpcUnavailableError(
      `coordinator ${address} serves TLS but this client connected in plaintext: ` +
        'pass --tls-ca <ca.pem> (and --tls-cert/--tls-key when it requires client certificates)',
      { cause: err },
    );
  };
  const metadata = () => {
    const md = new grpc.Metadata();
    if (options.token !== '') md.set(TOKEN_METADATA_KEY, `Bearer ${options.token}`);
    return md;
  };
  const callTimeoutMs = options.callTimeoutMs ?? 30_000;
  const unary =
    <Q, R>(method: string, timeoutMs = callTimeoutMs) =>
    (req: Q): Promise<R> =>
      new Promise((resolve, reject) => {
        const cb: Callback<R> = (err, res) => (err ? void diagnosed(fromServiceError(err, address, tls)).then(reject) : resolve(res as R));
        raw[method]!.call(raw, req, metadata(), { deadline: Date.now() + timeoutMs }, cb);
      });
  const stream =
    <Q, R>(method: string) =>
    (req: Q): RpcStream<R> => {
      // with a listener, a stream cancelled or failed before anyone iterates it cannot crash the process
      const call = (raw[method]!.call(raw, req, metadata()) as grpc.ClientReadableStream<R>).on('error', () => undefined);
      let cancelled = false;
      return {
        cancel() {
          cancelled = true;
          call.cancel();
        },
        async *[Symbol.asyncIterator]() {
          try {
            for await (const msg of call) yield msg as R;
          } catch (err) {
            if (cancelled && (err as grpc.ServiceError).code === grpc.status.CANCELLED) return;
            throw await diagnosed(fromServiceError(err as grpc.ServiceError, address, tls));
          } finally {
            if (!cancelled) call.cancel();
          }
        },
      };
    };
  return {
    register: unary('Register'),
    heartbeat() {
      let cb!: Callback<HeartbeatReply>;
      const closed = new Promise<HeartbeatReply>((resolve, reject) => {
        cb = (err, res) => (err ? void diagnosed(fromServiceError(err, address, tls)).then(reject) : resolve(res ?? {}));
      });
      closed.catch(() => undefined);
      const call = raw.Heartbeat!.call(raw, metadata(), cb) as grpc.ClientWritableStream<HeartbeatRequest>;
      call.on('error', () => undefined);
      return {
        send: (req) => {
          call.write(req);
        },
        end: () => {
          call.end();
          return closed;
        },
        closed,
      };
    },
    assignments: stream('Assignments'),
    reportMetrics: unary('ReportMetrics'),
    reportCheckpoint: unary('ReportCheckpoint'),
    submitRun: unary('SubmitRun'),
    resumeRun: unary('ResumeRun', Math.max(callTimeoutMs, RESUME_TIMEOUT_MS)),
    cancelRun: unary('CancelRun'),
    getRun: unary('GetRun'),
    watchCluster: stream('WatchCluster'),
    waitForReady(timeoutMs) {
      return new Promise((resolve, reject) => {
        let settled = false;
        const finish = (err?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(early);
          if (err) reject(err);
          else resolve();
        };
        // The channel keeps why it failed; one quick call brings it (and its TLS hint) out. A
        // TLS mismatch or an untrusted certificate will not heal by waiting: those fail at once.
        const explain = (base: string, cause: unknown, onlyIfPermanent: boolean) => {
          raw.GetRun!.call(raw, { run_id: '' }, metadata(), { deadline: Date.now() + 2000 }, (probe: grpc.ServiceError | null) => {
            const details = probe?.code === grpc.status.UNAVAILABLE ? probe.details.replace(/\s*Resolution note:\s*$/, '') : '';
            const hint = tls && details ? tlsHint(details) : '';
            void diagnosed(new RpcUnavailableError(`${base}${details ? `: ${details}${hint}` : ''}`, { cause })).then((e) => {
              if (!onlyIfPermanent || hint !== '' || e.message.includes('serves TLS but')) finish(e);
            });
          });
        };
        const early = setTimeout(() => explain(`coordinator ${address} is unavailable`, null, true), Math.min(2000, timeoutMs / 2));
        raw.waitForReady(Date.now() + timeoutMs, (err) => {
          if (!err) return finish();
          explain(`coordinator ${address} did not answer within ${timeoutMs} ms`, err, false);
        });
      });
    },
    close: () => raw.close(),
  };
}
