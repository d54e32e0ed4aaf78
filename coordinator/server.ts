// `createCoordinatorServer(deps)`: the coordinator service, built but not bound. One named
// handler per RPC; domain errors become gRPC statuses in `toRpcError` only.
import { ConfigError } from '../src/config/index.js';
import { RunNotFoundError, RunStateError, type StoreDb } from '../src/store/index.js';
import {
  createRpcServer,
  RpcCode,
  RpcError,
  type Ack,
  type Assignment,
  type AssignmentsRequest,
  type CallContext,
  type CheckpointReport,
  type ClusterEvent,
  type CoordinatorHandlers,
  type HeartbeatReply,
  type HeartbeatRequest,
  type MetricsReport,
  type RegisterReply,
  type RegisterRequest,
  type RpcServer,
  type RunInfo,
  type ResumeRunRequest,
  type RunRef,
  type ServerTls,
  type SubmitRunRequest,
  type WatchRequest,
} from '../src/rpc/index.js';
import { Coordinator } from './coordinator.js';
import { CoordinatorError, InvalidRequestError, NotAMemberError, NotResumableError, UnknownWorkerError } from './errors.js';
import { parseCoordinatorOptions, type CoordinatorOptions } from './options.js';
import { watchWithSnapshots } from './watch.js';
import type { LogLine } from '../src/util/log.js';

export interface CoordinatorServerDeps {
  db: StoreDb;
  /** The cluster token every call must carry. */
  token: string;
  options?: Partial<CoordinatorOptions>;
  log?: LogLine;
  /** Serve TLS (mutual TLS when it carries a CA); absent: plaintext. */
  tls?: ServerTls;
}

export interface CoordinatorServer extends RpcServer {
  readonly coordinator: Coordinator;
}

/** Every domain error → its status; anything else is INTERNAL (a bug). */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ConfigError || err instanceof InvalidRequestError)
    return new RpcError(RpcCode.INVALID_ARGUMENT, message, { cause: err });
  if (err instanceof RunNotFoundError || err instanceof UnknownWorkerError) return new RpcError(RpcCode.NOT_FOUND, message, { cause: err });
  if (err instanceof RunStateError || err instanceof NotAMemberError || err instanceof NotResumableError)
    return new RpcError(RpcCode.FAILED_PRECONDITION, message, { cause: err });
  if (err instanceof CoordinatorError) return new RpcError(RpcCode.FAILED_PRECONDITION, message, { cause: err });
  return new RpcError(RpcCode.INTERNAL, message, { cause: err });
}

async function mapped<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toRpcError(err);
  }
}

function handlersFor(c: Coordinator): CoordinatorHandlers {
  return {
    register: (req: RegisterRequest): Promise<RegisterReply> => mapped(() => c.register(req)),
    heartbeat: async (requests: AsyncIterable<HeartbeatRequest>): Promise<HeartbeatReply> =>
      mapped(async () => {
        for await (const hb of requests) c.heartbeat(hb.worker_id);
        return {};
      }),
    assignments(req: AssignmentsRequest, _ctx: CallContext): AsyncIterable<Partial<Assignment>> {
      try {
        return c.assignments(req.worker_id);
      } catch (err) {
        const e = toRpcError(err);
        return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(e) }) };
      }
    },
    reportMetrics: (req: MetricsReport): Promise<Ack> =>
      mapped(() => {
        c.reportMetrics(req);
        return {};
      }),
    reportCheckpoint: (req: CheckpointReport): Promise<Ack> =>
      mapped(() => {
        c.reportCheckpoint(req);
        return {};
      }),
    submitRun: (req: SubmitRunRequest): Promise<RunInfo> =>
      mapped(() => c.submit(req.config_json, req.workers, req.config_path, req.priority ?? 0)),
    resumeRun: (req: ResumeRunRequest): Promise<RunInfo> => mapped(() => c.resume(req)),
    cancelRun: (req: RunRef): Promise<RunInfo> => mapped(() => c.cancel(req.run_id)),
    getRun: (req: RunRef): Promise<RunInfo> => mapped(() => c.info(req.run_id)),
    watchCluster: (req: WatchRequest): AsyncIterable<ClusterEvent> => watchWithSnapshots(c, req),
  };
}

/** The coordinator gRPC service over `deps.db`, not bound: call `listen(host, port)`. */
export function createCoordinatorServer(deps: CoordinatorServerDeps): CoordinatorServer {
  const options = parseCoordinatorOptions(deps.options);
  const coordinator = new Coordinator({ db: deps.db, options, ...(deps.log ? { log: deps.log } : {}) });
  const rpc = createRpcServer(handlersFor(coordinator), {
    token: deps.token,
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.tls ? { tls: deps.tls } : {}),
  });
  return {
    coordinator,
    listen: (host, port) => rpc.listen(host, port),
    get accepting() {
      return rpc.accepting;
    },
    drain: () => rpc.drain(),
    async shutdown(graceMs) {
      coordinator.close();
      await rpc.shutdown(graceMs);
      await coordinator.closeStores();
    },
  };
}
