// Messages of proto/bnn/v1/coordinator.proto as proto-loader hands them over (keepCase,
// defaults filled, 64-bit integers as numbers), and the transport-free shape of the service.

export interface RegisterRequest {
  hostname: string;
  hardware_json: string;
  threads: number;
  backend: string;
  pid: number;
}
export interface RegisterReply {
  worker_id: string;
  heartbeat_interval_ms: number;
}
export interface HeartbeatRequest {
  worker_id: string;
}
export type HeartbeatReply = Record<string, never>;
export interface AssignmentsRequest {
  worker_id: string;
}
export type AssignmentKind = 'KIND_UNSPECIFIED' | 'ASSIGN' | 'STOP';
export interface Assignment {
  kind: AssignmentKind;
  run_id: string;
  config_json: string;
  rank: number;
  world_size: number;
  generation: number;
  /** One NATS url, or a cluster's seed list comma-joined; may carry credentials in every url. */
  nats_url: string;
  reason: string;
  /** The group was re-formed: every rank takes rank 0's training state before the next step. */
  resync: boolean;
  /** Load this checkpoint (sha256 checked) before training; empty: none. */
  resume_path: string;
  resume_sha256: string;
  resume_step: number;
  /** The run's secret: every collective message carries a MAC keyed by it (src/collective/auth.ts). Never logged or stored. */
  run_key: Uint8Array;
  /** Where rank 0 writes checkpoints: 'local' (or empty) or 'nats' (the object store at nats_url). */
  checkpoint_store: string;
  /** Replicas of the object store bucket when created; 0: min(3, NATS cluster size). */
  checkpoint_replicas: number;
}
export interface MetricsReport {
  worker_id: string;
  run_id: string;
  generation: number;
  rank: number;
  epoch: number;
  train_loss: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  lr: number;
  samples_per_s: number;
  epoch_time_s: number;
  done: boolean;
  error: string;
  steps: number;
  /** A collective of this rank's generation failed; the coordinator evicts `missing_ranks` and re-forms the group. */
  collective_error: string;
  missing_ranks: number[];
  failed_step: number;
  /** With an epoch's metrics: its steps skipped for a NaN or ±Inf loss or gradient (`train.onNonFinite: skip`). */
  skipped_steps: number;
  step_seconds: number[];
  allreduce_bytes: number;
  allreduce_seconds: number;
  telemetry_json: string;
  /** Collective messages dropped since the previous report because their MAC failed, and the first subjects of each step. */
  rejected_messages: number;
  rejected_subjects: string[];
  /** The engine backend this rank trains with (sent with its first report of a generation). */
  backend: string;
  /** Rank 0, first report: FP32 model size and packed export size (0: none). */
  model_size_bytes: number;
  packed_size_bytes: number;
  /** Energy measured since the previous energy report (JSON, see the proto). */
  energy_json: string;
  /** This rank leaves the run on purpose (SIGTERM, SIGINT), with why: recorded `left`, and the group re-forms without it. */
  leaving: string;
}
export interface CheckpointReport {
  worker_id: string;
  run_id: string;
  step: number;
  path: string;
  epoch: number;
  sha256: string;
  bytes: number;
  generation: number;
  rank: number;
}
export interface SubmitRunRequest {
  config_json: string;
  workers: number;
  config_path: string;
  /** Queue order: higher first, then FIFO. */
  priority: number;
}
export interface RunRef {
  run_id: string;
}
export interface ResumeRunRequest {
  run_id: string;
  workers: number;
  compression: string;
  /** Queue order while it waits (higher first). */
  priority: number;
}
export interface RunInfo {
  run_id: string;
  status: string;
  generation: number;
  world_size: number;
  error: string;
  epochs_done: number;
  epochs: number;
  /** ResumeRun: the checkpoint the run continues from ('' from the start), its step, and the checkpoints refused. */
  resumed_from: string;
  resumed_step: number;
  warnings: string[];
  /** A PENDING run: why it waits, and its place in the queue (1: next); '' and 0 otherwise. */
  waiting: string;
  queue_position: number;
  priority: number;
}
export interface WatchRequest {
  run_id: string;
  /** > 0: also send `snapshot` events (ClusterSnapshot JSON) at once and then at this interval. */
  snapshot_interval_ms: number;
}
export interface ClusterEvent {
  kind: string;
  run_id: string;
  detail_json: string;
  at: string;
}
export type Ack = Record<string, never>;

/** What a handler knows about its call. */
export interface CallContext {
  /** Peer address (`ipv4:127.0.0.1:5123`). */
  peer: string;
  /** Aborted when the client cancels or the connection drops (streams end then). */
  signal: AbortSignal;
}

/**
 * The coordinator service without a transport: one method per RPC. Unary handlers resolve
 * with the reply; server-streaming handlers return an async iterable that the transport drains
 * until it ends or the call is cancelled (then `return()` is called); the client-streaming
 * handler consumes the request stream. Throw RpcError (or anything: INTERNAL) to fail a call.
 */
export interface CoordinatorHandlers {
  register(req: RegisterRequest, ctx: CallContext): Promise<RegisterReply>;
  heartbeat(requests: AsyncIterable<HeartbeatRequest>, ctx: CallContext): Promise<HeartbeatReply>;
  assignments(req: AssignmentsRequest, ctx: CallContext): AsyncIterable<Partial<Assignment>>;
  reportMetrics(req: MetricsReport, ctx: CallContext): Promise<Ack>;
  reportCheckpoint(req: CheckpointReport, ctx: CallContext): Promise<Ack>;
  submitRun(req: SubmitRunRequest, ctx: CallContext): Promise<RunInfo>;
  resumeRun(req: ResumeRunRequest, ctx: CallContext): Promise<RunInfo>;
  cancelRun(req: RunRef, ctx: CallContext): Promise<RunInfo>;
  getRun(req: RunRef, ctx: CallContext): Promise<RunInfo>;
  watchCluster(req: WatchRequest, ctx: CallContext): AsyncIterable<ClusterEvent>;
}
