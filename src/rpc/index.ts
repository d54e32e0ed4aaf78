export { connectCoordinator, createRpcServer, healthProtoPath, protoPath, TOKEN_METADATA_KEY } from './grpc.js';
export { COORDINATOR_SERVICE_NAME, HealthStatuses, type ServingStatus, type WatchedStatus } from './health.js';
export type { CoordinatorClient, CoordinatorClientOptions, HeartbeatSender, RpcServer, RpcServerOptions, RpcStream } from './grpc.js';
export { isRefusal, RpcCode, RpcError, RpcRefusedError, RpcUnauthenticatedError, RpcUnavailableError, rpcCodeName } from './errors.js';
export type * from './types.js';
export { clientTlsFiles, loadClientTls, loadServerTls, probeTls, serverTlsFiles, TlsConfigError } from './tls.js';
export type { ClientTls, ClientTlsFiles, ServerTls, ServerTlsFiles } from './tls.js';
