// Errors of the RPC layer. Status codes mirror grpc.status so callers outside src/rpc
// need not import @grpc/grpc-js.

export const RpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type RpcCode = (typeof RpcCode)[keyof typeof RpcCode];

export const rpcCodeName = (code: number): string => Object.entries(RpcCode).find(([, v]) => v === code)?.[0] ?? `code ${code}`;

/**
 * A call failed with a status: thrown by handlers to answer with it, and by the client when a
 * call fails with a status that is the server's fault (INTERNAL, UNKNOWN, UNIMPLEMENTED,
 * DATA_LOSS: a bug there). The caller's own failures are RpcRefusedError and its siblings.
 */
export class RpcError extends Error {
  constructor(
    readonly code: RpcCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'RpcError';
  }
}

/** The server rejected the cluster token (missing or wrong). */
export class RpcUnauthenticatedError extends RpcError {
  readonly userFacing = true as const;
  constructor(message = 'the coordinator rejected the cluster token (missing or wrong --token / BNN_CLUSTER_TOKEN)') {
    super(RpcCode.UNAUTHENTICATED, message);
    this.name = 'RpcUnauthenticatedError';
  }
}

/** The coordinator could not be reached. */
export class RpcUnavailableError extends RpcError {
  readonly userFacing = true as const;
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(RpcCode.UNAVAILABLE, message, options);
    this.name = 'RpcUnavailableError';
  }
}

/** The statuses that say the request itself was refused or could not be served: the caller's to fix. */
const REFUSED_CODES: ReadonlySet<number> = new Set([
  RpcCode.CANCELLED,
  RpcCode.INVALID_ARGUMENT,
  RpcCode.DEADLINE_EXCEEDED,
  RpcCode.NOT_FOUND,
  RpcCode.ALREADY_EXISTS,
  RpcCode.PERMISSION_DENIED,
  RpcCode.RESOURCE_EXHAUSTED,
  RpcCode.FAILED_PRECONDITION,
  RpcCode.ABORTED,
  RpcCode.OUT_OF_RANGE,
]);

/** Whether a client seeing `code` should tell its user (RpcRefusedError) rather than report a bug. */
export function isRefusal(code: number): boolean {
  return REFUSED_CODES.has(code);
}

/** The coordinator refused a request (no such run, a bad config, a run that cannot be resumed, ...). */
export class RpcRefusedError extends RpcError {
  readonly userFacing = true as const;
  constructor(code: RpcCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'RpcRefusedError';
  }
}
