// The coordinator's state machine, free of any transport: worker membership from heartbeats,
// runs PENDING → RUNNING(generation) → COMPLETED | FAILED | CANCELLED, rank assignment,
// elastic re-forming (a lost member, a failed collective or a joining worker bumps the
// generation), checkpoints and resume, and every write to the experiment database.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { newRunKey } from '../src/collective/auth.js';
import { COMPRESSIONS, isCompression } from '../src/collective/compression.js';
import { NatsObjectBucket } from '../src/collective/nats-object-store.js';
import { redactNatsUrl } from '../src/collective/nats-url.js';
import { CheckpointStores, isObjectLocation, type ObjectStoreConnection } from '../src/checkpoint/index.js';
import { DEFAULT_KEEP_CHECKPOINTS, parseRunConfig, type RunConfig } from '../src/config/index.js';
import { currentProcessOwner, type ProcessOwner } from '../src/util/process-owner.js';
import { AsyncQueue } from '../src/util/queue.js';
import {
  addCheckpoint,
  addEnergySamples,
  addEpochMetrics,
  checkpointsPastRetention,
  removeCheckpoints,
  claimRun,
  EpochTally,
  addEvent,
  createRun,
  endGeneration,
  finishRun,
  getRun,
  joinRun,
  lastGeneration,
  leaveRun,
  listCheckpoints,
  listEpochMetrics,
  markRunning,
  recordHardware,
  resumeWorldSize,
  runOwner,
  setRunBackend,
  touchWorker,
  upsertWorker,
  type EpochMetricsInput,
  type StoreDb,
} from '../src/store/index.js';
import type {
  Assignment,
  CheckpointReport,
  ClusterEvent,
  MetricsReport,
  RegisterReply,
  RegisterRequest,
  ResumeRunRequest,
  RunInfo,
} from '../src/rpc/index.js';
import type { HardwareInfo } from '../src/telemetry/index.js';
import type { EnergySource } from '../src/store/schema.js';
import { EventBroadcast } from './broadcast.js';
import { chooseCheckpoint } from './checkpoints.js';
import { InvalidRequestError, NotAMemberError, NotResumableError, UnknownWorkerError } from './errors.js';
import type { CoordinatorOptions } from './options.js';
import type { LogLine } from '../src/util/log.js';

export type WorkerState = 'alive' | 'suspect' | 'dead';

/** A number a client sends, or 0. */
function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** The epoch row of rank 0's epoch report (a test loss below 0: the epoch was not evaluated). */
function epochMetricsOf(r: MetricsReport): EpochMetricsInput {
  const evaluated = r.test_loss >= 0;
  return {
    epoch: r.epoch,
    trainLoss: r.train_loss,
    trainAcc: r.train_acc,
    testLoss: evaluated ? r.test_loss : null,
    testAcc: evaluated ? r.test_acc : null,
    lr: r.lr,
    samplesPerS: r.samples_per_s,
    epochTimeS: r.epoch_time_s,
  };
}

interface WorkerEntry {
  id: string;
  seq: number;
  hostname: string;
  threads: number;
  backend: string;
  lastSeenMs: number;
  state: WorkerState;
  queue: AsyncQueue<Partial<Assignment>> | null;
  runId: string | null;
  /** It said it is shutting down (MetricsReport.leaving): no new run or generation is given to it. */
  leaving?: true;
  /** The latest progress report (for monitors only). */
  progress?: { step: number; samplesPerS: number; telemetry: Record<string, unknown> };
}

/** What monitors (/metrics, the dashboard) see of one worker. */
export interface WorkerSnapshot {
  id: string;
  hostname: string;
  state: WorkerState;
  threads: number;
  backend: string;
  runId: string | null;
  rank: number | null;
  heartbeatAgeS: number;
  /** From the latest progress report of its current run; null before the first. */
  step: number | null;
  samplesPerS: number | null;
  /** Host utilisation, temperature and power the worker could measure (HostTelemetry, src/telemetry/types.ts). */
  telemetry: Record<string, unknown>;
}

export interface RunSnapshot {
  id: string;
  name: string;
  status: 'PENDING' | 'RUNNING';
  generation: number;
  worldSize: number;
  /** Worker ids by rank. */
  members: string[];
  epochs: number;
  priority: number;
  /** PENDING: why it waits ("waiting for 4 workers, 2 idle") and its place in the queue (1: next); null when running. */
  waiting: string | null;
  queuePosition: number | null;
}

export interface ClusterSnapshot {
  workers: WorkerSnapshot[];
  /** Active runs (finished ones are in the store). */
  runs: RunSnapshot[];
}

/** Where a resumed run continues: a checkpoint verified against its recorded sha256. */
interface ResumePoint {
  path: string;
  sha256: string;
  step: number;
}

interface ActiveRun {
  id: string;
  /** The config the run trains with (a resume's overrides applied); the assignments carry it. */
  config: RunConfig;
  configJson: string;
  /** Members of the current generation. */
  worldSize: number;
  /** Workers the run was submitted (or resumed) with: a smaller group admits idle workers up to this. */
  targetWorldSize: number;
  /** The current generation; before the start, the last generation of an earlier attempt (0 for a new run). */
  generation: number;
  resumeFrom: ResumePoint | null;
  /** A resume from the object store of a run whose config names no store: its checkpoints stay there. */
  checkpointStore?: 'local' | 'nats';
  status: 'PENDING' | 'RUNNING';
  /** Worker ids by rank. */
  members: string[];
  startedMs: number;
  /** Final and best test accuracy and throughput, as rank 0 reports epochs. */
  tally: EpochTally;
  /**
   * The run's secret for the MACs of its collective messages: new for every run and every resume,
   * sent only in its members' ASSIGNs; never logged, stored or shown.
   */
  key: Uint8Array;
  /** Collective messages its members dropped for a failed MAC, and the `messages-rejected` events written. */
  rejected: { messages: number; events: number };
  /** Queue order: higher first, then `seq` (submission order). */
  priority: number;
  seq: number;
  /** PENDING: why it waits, as last recorded (a `waiting` event when it changes). */
  waiting: string | null;
  /** Members that finished the run (reported done): not lost, whatever their process does next. */
  finished: Set<string>;
  /** Wall time of earlier attempts (a resumed run adds this attempt's to it). */
  wallTimeBeforeS: number;
  /** Rank 0's report of the model's sizes (FP32, packed export). */
  modelSizeBytes: number | null;
  packedSizeBytes: number | null;
  /** The backend recorded for the run (the engine the workers really run). */
  backend: string | null;
}

/** `messages-rejected` events per run; later rejections are counted only (Prometheus, and one event at the run's end). */
const REJECTION_EVENTS_PER_RUN = 20;

export interface CoordinatorDeps {
  db: StoreDb;
  options: CoordinatorOptions;
  log?: LogLine;
  now?: () => number;
  /**
   * The process recorded as the owner of every run this coordinator creates, starts or resumes
   * (default: this one), so that runs it leaves RUNNING when killed show as ABANDONED.
   */
  owner?: ProcessOwner;
  /**
   * Where the coordinator reads checkpoints (to verify them for a resume) and deletes them
   * (retention): local files, and the object store of the NATS servers at `options.natsUrl`.
   */
  checkpoints?: CheckpointStores;
}

/** The checkpoint stores of a coordinator: local files, and the object store of the NATS servers it hands its workers. */
export function coordinatorCheckpointStores(options: CoordinatorOptions): CheckpointStores {
  return new CheckpointStores({
    openBucket: (bucket) =>
      NatsObjectBucket.open({
        servers: options.natsUrl,
        bucket,
        name: 'bnn-coordinator-checkpoints',
        ...(options.checkpointReplicas !== undefined ? { replicas: options.checkpointReplicas } : {}),
      }),
    noObjectsHint: `check that the NATS servers at ${redactNatsUrl(options.natsUrl)} run JetStream`,
  });
}

export class Coordinator {
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly runs = new Map<string, ActiveRun>();
  private seq = 0;
  private runSeq = 0;
  /**
   * Runs that ended here lately (cancelled or failed while rank 0 was finishing an epoch): rank 0's
   * report of that epoch, sent just after the stop, is still recorded, since its checkpoint is.
   */
  private readonly ended = new Map<string, { generation: number; rank0: string }>();
  private closing = false;
  readonly events = new EventBroadcast();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly log: LogLine;
  private readonly now: () => number;
  readonly checkpoints: CheckpointStores;
  /** Retention passes in flight, one chain per run. */
  private readonly pruning = new Map<string, Promise<void>>();

  constructor(private readonly deps: CoordinatorDeps) {
    this.log = deps.log ?? (() => undefined);
    this.now = deps.now ?? Date.now;
    this.checkpoints = deps.checkpoints ?? coordinatorCheckpointStores(deps.options);
    this.sweepTimer = setInterval(() => this.sweep(), deps.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  private get db(): StoreDb {
    return this.deps.db;
  }

  private get owner(): ProcessOwner {
    return this.deps.owner ?? currentProcessOwner();
  }

  register(req: RegisterRequest): RegisterReply {
    const hostname = req.hostname || 'unknown';
    const id = `w-${hostname.replace(/[^A-Za-z0-9_-]/g, '_')}-${req.pid}-${randomBytes(2).toString('hex')}`;
    upsertWorker(this.db, { id, hostname });
    if (req.hardware_json) {
      try {
        recordHardware(this.db, { hardware: JSON.parse(req.hardware_json) as HardwareInfo, workerId: id });
      } catch (err) {
        this.log(`worker ${id}: hardware not recorded (${(err as Error).message})`, 'warn');
      }
    }
    this.workers.set(id, {
      id,
      seq: this.seq++,
      hostname,
      threads: req.threads,
      backend: req.backend,
      lastSeenMs: this.now(),
      state: 'alive',
      queue: null,
      runId: null,
    });
    addEvent(this.db, { kind: 'registered', detail: { workerId: id, hostname, threads: req.threads, backend: req.backend } });
    this.events.publish('worker', '', { workerId: id, state: 'alive', hostname });
    this.log(`worker ${id} registered (${hostname}, ${req.threads} thread(s), ${req.backend})`);
    return { worker_id: id, heartbeat_interval_ms: this.deps.options.heartbeatIntervalMs };
  }

  private idleWorkers(): WorkerEntry[] {
    return [...this.workers.values()]
      .filter((w) => w.state === 'alive' && w.queue !== null && w.runId === null && !w.leaving)
      .sort((a, b) => a.seq - b.seq);
  }

  private worker(id: string): WorkerEntry {
    const w = this.workers.get(id);
    if (!w || w.state === 'dead') throw new UnknownWorkerError(id);
    return w;
  }

  heartbeat(workerId: string): void {
    const w = this.worker(workerId);
    w.lastSeenMs = this.now();
    touchWorker(this.db, w.id);
    if (w.state === 'suspect') {
      w.state = 'alive';
      this.events.publish('worker', w.runId ?? '', { workerId: w.id, state: 'alive' });
      // only alive workers are scheduled: one that connected while suspect may start a run now
      if (w.runId === null && w.queue !== null) this.schedule();
    }
  }

  /** The worker's assignment stream; it ends when the worker goes or `stop()` is called. */
  assignments(workerId: string): AsyncQueue<Partial<Assignment>> {
    const w = this.worker(workerId);
    w.queue?.stop();
    const queue = new AsyncQueue<Partial<Assignment>>();
    w.queue = queue;
    queue.onStop(() => {
      if (w.queue !== queue) return;
      w.queue = null;
      // A member whose stream closes (its process died, its connection broke) is gone now:
      // waiting for its heartbeats to stop would only delay the run's failure.
      if (this.closing || w.state === 'dead') return;
      if (w.runId !== null) this.declareDead(w, this.now() - w.lastSeenMs, 'its assignment stream closed');
      // an idle worker that closed its stream left (stopped, or `--once` after its run): not a death
      else this.leave(w);
    });
    queue.push({ kind: 'KIND_UNSPECIFIED', reason: 'connected' });
    this.schedule();
    return queue;
  }

  submit(configJson: string, workers: number, configPath: string, priority = 0): RunInfo {
    if (!Number.isInteger(workers) || workers < 1) throw new InvalidRequestError(`workers: expected an integer ≥ 1, got ${workers}`);
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000)
      throw new InvalidRequestError(`priority: expected an integer from -1000000 to 1000000 (higher starts first), got ${priority}`);
    let raw: unknown;
    try {
      raw = JSON.parse(configJson);
    } catch (err) {
      throw new InvalidRequestError(`config_json is not JSON: ${(err as Error).message}`, { cause: err });
    }
    const config = parseRunConfig(raw, { source: configPath || 'SubmitRun.config_json' });
    const row = createRun(this.db, { config, owner: this.owner, ...(configPath ? { configPath } : {}) });
    // What ResumeRun needs that the config does not say (resumeWorldSize reads it).
    addEvent(this.db, { runId: row.id, kind: 'submitted', detail: { workers, ...(priority !== 0 ? { priority } : {}) } });
    const run: ActiveRun = {
      id: row.id,
      config,
      configJson: JSON.stringify(config),
      worldSize: workers,
      targetWorldSize: workers,
      generation: 0,
      resumeFrom: null,
      status: 'PENDING',
      members: [],
      startedMs: 0,
      tally: new EpochTally(),
      key: newRunKey(),
      rejected: { messages: 0, events: 0 },
      ...this.queueFields(priority),
      wallTimeBeforeS: 0,
    };
    this.runs.set(run.id, run);
    this.events.publish('run', run.id, { status: 'PENDING', workers, priority });
    this.log(`run ${run.id} submitted (${config.name}, ${workers} worker(s))`);
    this.schedule();
    return this.info(run.id);
  }

  /**
   * Continues a run that is not active (its cluster died, or it was cancelled or failed) from its
   * newest checkpoint whose file still has the recorded sha256; newer ones that fail are refused
   * (named in `warnings` and a `checkpoint-refused` event). No checkpoint: from step 0. The run
   * waits (PENDING) for `workers` idle workers, by default the world size of its last generation.
   */
  async resume(req: Partial<ResumeRunRequest> & { run_id: string }): Promise<RunInfo> {
    const compression = req.compression ?? '';
    if (compression !== '' && !isCompression(compression))
      throw new InvalidRequestError(`compression: expected one of ${COMPRESSIONS.join(', ')} (or empty: the run's), got '${compression}'`);
    const workers = req.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0)
      throw new InvalidRequestError(`workers: expected an integer ≥ 0 (0: the run's last world size), got ${workers}`);
    const row = getRun(this.db, req.run_id);
    if (this.runs.has(row.id)) throw new NotResumableError(row.id, `it is active here (${this.runs.get(row.id)!.status})`);
    if (row.status === 'COMPLETED') throw new NotResumableError(row.id, 'it has COMPLETED');
    const stored = parseRunConfig(row.config, { source: `run ${row.id}` });
    // the run's config, with the wire format the resume asks for
    const config = compression === '' ? stored : { ...stored, train: { ...stored.train, compression } };
    const { chosen, refused } = await chooseCheckpoint(this.db, row.id, this.checkpoints);
    await this.deleteOrphans(row.id, (chosen && isObjectLocation(chosen.path)) || stored.checkpointStore === 'nats');
    if (this.runs.has(row.id)) throw new NotResumableError(row.id, 'it was resumed concurrently');
    const warnings = refused.map((r) => `${r.problem}; refused`);
    for (const r of refused) {
      addEvent(this.db, { runId: row.id, kind: 'checkpoint-refused', detail: { path: r.path, step: r.step, problem: r.problem } });
      this.log(`run ${row.id}: ${r.problem}; refused, trying the previous checkpoint`, 'warn');
    }
    const worldSize = workers || resumeWorldSize(this.db, row.id);
    const epochs = listEpochMetrics(this.db, row.id).filter((e) => (chosen === null ? false : e.epoch <= chosen.epoch));
    const accs = epochs.map((e) => e.testAcc).filter((a): a is number => a !== null);
    const run: ActiveRun = {
      id: row.id,
      config,
      configJson: JSON.stringify(config),
      worldSize,
      targetWorldSize: worldSize,
      generation: lastGeneration(this.db, row.id).generation,
      status: 'PENDING',
      members: [],
      startedMs: 0,
      resumeFrom: chosen ? { path: chosen.path, sha256: chosen.sha256, step: chosen.step } : null,
      ...(chosen && isObjectLocation(chosen.path) ? { checkpointStore: 'nats' as const } : {}),
      tally: new EpochTally({ bestTestAcc: accs.length > 0 ? Math.max(...accs) : null, finalTestAcc: epochs.at(-1)?.testAcc ?? null }),
      key: newRunKey(),
      rejected: { messages: 0, events: 0 },
      ...this.queueFields(req.priority ?? 0),
      wallTimeBeforeS: row.wallTimeS ?? 0,
      modelSizeBytes: row.modelSizeBytes ?? null,
      packedSizeBytes: row.packedSizeBytes ?? null,
    };
    this.runs.set(run.id, run);
    this.ended.delete(run.id);
    // Ours from now on: until its workers start it, a run left RUNNING by a dead owner is not ABANDONED.
    const previousOwner = row.status === 'RUNNING' || row.status === 'PENDING' ? runOwner(row) : null;
    claimRun(this.db, run.id, this.owner);
    addEvent(this.db, {
      runId: run.id,
      kind: 'resume-requested',
      detail: {
        path: chosen?.path ?? null,
        step: chosen?.step ?? 0,
        workers: worldSize,
        ...(compression !== '' ? { compression } : {}),
        ...(previousOwner ? { from: row.status, previousOwner } : {}),
      },
    });
    const from = chosen ? `${chosen.path} (step ${chosen.step})` : 'the start (no good checkpoint)';
    this.events.publish('run', run.id, {
      status: 'PENDING',
      workers: worldSize,
      resumedFrom: chosen?.path ?? null,
      resumedStep: chosen?.step ?? 0,
      warnings,
    });
    this.log(`run ${run.id} resuming from ${from} with ${worldSize} worker(s)`);
    this.schedule();
    return { ...this.info(run.id), resumed_from: chosen?.path ?? '', resumed_step: chosen?.step ?? 0, warnings };
  }

  /** The queue fields of a new (or resumed) run. */
  private queueFields(priority: number) {
    return {
      priority,
      seq: this.runSeq++,
      waiting: null,
      finished: new Set<string>(),
      modelSizeBytes: null,
      packedSizeBytes: null,
      backend: null,
    };
  }

  /** PENDING runs in queue order: higher priority first, then submission order. */
  private queued(): ActiveRun[] {
    return [...this.runs.values()].filter((r) => r.status === 'PENDING').sort((a, b) => b.priority - a.priority || a.seq - b.seq);
  }

  /**
   * Starts pending runs in queue order while enough idle workers are connected (a run that does
   * not fit leaves the idle workers to the next one that does); tops up shrunken groups; records
   * why each run still waits.
   */
  private schedule(): void {
    for (const run of this.queued()) {
      const idle = this.idleWorkers();
      if (idle.length < run.worldSize) continue;
      this.start(run, idle.slice(0, run.worldSize));
    }
    for (const run of this.runs.values()) {
      if (run.status === 'RUNNING' && run.members.length < run.targetWorldSize && this.idleWorkers().length > 0) {
        this.reform(run, 'worker(s) joined');
      }
    }
    this.updateWaiting();
  }

  /** Why a run waits: the workers it needs, how many are idle and registered, and what is ahead of it. */
  private waitingReason(run: ActiveRun, ahead: number): string {
    const idle = this.idleWorkers().length;
    const registered = [...this.workers.values()].filter((w) => w.state !== 'dead').length;
    let why = `waiting for ${run.worldSize} worker${run.worldSize === 1 ? '' : 's'}, ${idle} idle`;
    if (registered < run.worldSize) why += ` (${registered} registered)`;
    if (ahead > 0) why += `; ${ahead} run${ahead === 1 ? '' : 's'} ahead in the queue`;
    return why;
  }

  /** Records (event `waiting`) and publishes each pending run's reason when it changed. */
  private updateWaiting(): void {
    const queue = this.queued();
    queue.forEach((run, i) => {
      const reason = this.waitingReason(run, i);
      if (reason === run.waiting) return;
      run.waiting = reason;
      addEvent(this.db, { runId: run.id, kind: 'waiting', detail: { reason, position: i + 1, workers: run.worldSize } });
      this.events.publish('run', run.id, { status: 'PENDING', waiting: reason, position: i + 1, workers: run.worldSize });
      this.log(`run ${run.id} ${reason}`);
    });
  }

  private start(run: ActiveRun, members: WorkerEntry[]): void {
    run.generation += 1;
    run.status = 'RUNNING';
    run.waiting = null;
    run.members = members.map((w) => w.id);
    run.startedMs = this.now();
    const threads = members.reduce((sum, w) => sum + (run.config.engine.threads || w.threads), 0);
    markRunning(this.db, run.id, { backend: members[0]!.backend || run.config.engine.backend, threads, owner: this.owner });
    this.assign(run, members, false);
    this.events.publish('run', run.id, { status: 'RUNNING', generation: run.generation, workers: run.members });
    this.log(
      `run ${run.id} RUNNING: generation ${run.generation}, ${run.worldSize} worker(s)` +
        (run.resumeFrom ? `, resumed from step ${run.resumeFrom.step}` : ''),
    );
  }

  /**
   * Makes `members` (by rank) the run's current generation and sends each its assignment: the
   * one place an ASSIGN is built. A first generation of a resumed run carries the checkpoint to
   * load; `resync` (a re-formed group) makes every rank take rank 0's state instead.
   */
  private assign(run: ActiveRun, members: WorkerEntry[], resync: boolean): void {
    const resume =
      !resync && run.resumeFrom
        ? { resume_path: run.resumeFrom.path, resume_sha256: run.resumeFrom.sha256, resume_step: run.resumeFrom.step }
        : {};
    members.forEach((w, rank) => {
      w.runId = run.id;
      joinRun(this.db, { runId: run.id, generation: run.generation, workerId: w.id, rank, worldSize: run.worldSize });
      w.queue!.push({
        kind: 'ASSIGN',
        run_id: run.id,
        config_json: run.configJson,
        rank,
        world_size: run.worldSize,
        generation: run.generation,
        nats_url: this.deps.options.natsUrl,
        run_key: run.key,
        resync,
        checkpoint_store: run.config.checkpointStore ?? run.checkpointStore ?? this.deps.options.checkpointStore,
        checkpoint_replicas: run.config.checkpointReplicas ?? this.deps.options.checkpointReplicas ?? 0,
        ...resume,
      });
    });
  }

  /**
   * Re-forms a running run's group as the next generation: the members still connected keep
   * their order (ranks 0..k−1), idle workers join after them up to the target size. Every member
   * gets a new assignment with `resync`: each abandons the step in flight (no weights changed
   * in it), takes rank 0's state and redoes it. No member left: the run fails.
   */
  private reform(run: ActiveRun, reason: string): void {
    const survivors = run.members
      .map((id) => this.workers.get(id))
      .filter((w): w is WorkerEntry => w !== undefined && w.state !== 'dead' && w.queue !== null && w.runId === run.id);
    if (survivors.length === 0) {
      this.end(run, 'FAILED', `${reason}; no worker of the run is left`);
      return;
    }
    const joiners = this.idleWorkers().slice(0, Math.max(0, run.targetWorldSize - survivors.length));
    const members = [...survivors, ...joiners];
    const previous = run.generation;
    endGeneration(this.db, run.id, previous, 'generation-ended');
    run.generation = previous + 1;
    run.members = members.map((w) => w.id);
    run.worldSize = members.length;
    addEvent(this.db, {
      runId: run.id,
      kind: 'generation',
      detail: {
        generation: run.generation,
        previous,
        worldSize: run.worldSize,
        members: run.members,
        joined: joiners.map((w) => w.id),
        reason,
      },
    });
    this.assign(run, members, true);
    this.events.publish('generation', run.id, {
      generation: run.generation,
      previous,
      worldSize: run.worldSize,
      workers: run.members,
      reason,
    });
    this.log(`run ${run.id}: generation ${run.generation}, ${run.worldSize} worker(s) (${reason})`);
  }

  /**
   * A rank's collective failed. A report from an older generation is stale (the group has been
   * re-formed since). Ranks it names (their contributions never arrived by the deadline, or
   * carried NaN or Inf values, which a member never sends) are evicted as dead; then the group
   * is re-formed and the step redone.
   */
  private collectiveFailed(run: ActiveRun, w: WorkerEntry, r: MetricsReport): void {
    if (r.generation !== run.generation) return;
    const missing = (r.missing_ranks ?? []).map((rank) => run.members[rank]).filter((id): id is string => id !== undefined && id !== w.id);
    addEvent(this.db, {
      runId: run.id,
      kind: 'collective-failed',
      detail: { workerId: w.id, rank: r.rank, generation: r.generation, step: r.failed_step, error: r.collective_error, missing },
    });
    this.log(`run ${run.id}: collective failed on rank ${r.rank} at step ${r.failed_step}: ${r.collective_error}`, 'warn');
    for (const id of missing) {
      const m = this.workers.get(id);
      if (m)
        this.declareDead(
          m,
          this.now() - m.lastSeenMs,
          `failed the all-reduce of step ${r.failed_step} (reported by rank ${r.rank}: ${r.collective_error})`,
          false,
        );
    }
    if (this.runs.get(run.id) === run)
      this.reform(run, `collective failed on rank ${r.rank} at step ${r.failed_step}: ${r.collective_error}`);
  }

  /** Records a checkpoint a member wrote (also after its run was cancelled: the last step boundary). */
  reportCheckpoint(r: CheckpointReport): void {
    const w = this.worker(r.worker_id);
    const row = getRun(this.db, r.run_id);
    const run = this.runs.get(row.id);
    if (run && w.runId !== run.id) throw new NotAMemberError(w.id, row.id, r.generation, r.rank);
    if (!/^[0-9a-f]{64}$/.test(r.sha256)) throw new InvalidRequestError(`sha256: expected 64 lowercase hex digits, got '${r.sha256}'`);
    if (!r.path.startsWith('/') && !isObjectLocation(r.path))
      throw new InvalidRequestError(`path: expected an absolute path or a nats-os:// location, got '${r.path}'`);
    addCheckpoint(this.db, { runId: row.id, epoch: r.epoch, step: r.step, path: r.path, sha256: r.sha256, bytes: r.bytes });
    this.events.publish('checkpoint', row.id, { step: r.step, epoch: r.epoch, path: r.path, sha256: r.sha256, bytes: r.bytes });
    this.retain(row.id, run?.config ?? parseRunConfig(row.config, { source: `run ${row.id}` }));
  }

  /**
   * Applies the run's retention (`train.keepCheckpoints` newest, plus the best epoch's) in the
   * background, after the others of the run: rows first, then files; a `checkpoints-deleted`
   * event says which and how many bytes were freed.
   */
  private retain(runId: string, config: RunConfig): void {
    const keep = config.train.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS;
    const previous = this.pruning.get(runId) ?? Promise.resolve();
    const next = previous.then(async () => {
      const rows = checkpointsPastRetention(this.db, runId, keep);
      if (rows.length === 0) return;
      const r = await removeCheckpoints(this.db, rows, (location) => this.checkpoints.delete(location));
      addEvent(this.db, {
        runId,
        kind: 'checkpoints-deleted',
        detail: { paths: r.removed.map((x) => x.path), bytesFreed: r.bytesFreed, keep, ...(r.failed.length ? { failed: r.failed } : {}) },
      });
      for (const f of r.failed) this.log(`run ${runId}: checkpoint ${f.location} not deleted: ${f.problem}`, 'warn');
    });
    const settled = next.catch((err: Error) => this.log(`run ${runId}: retention failed: ${err.message}`, 'warn'));
    this.pruning.set(runId, settled);
    void settled.then(() => {
      if (this.pruning.get(runId) === settled) this.pruning.delete(runId);
    });
  }

  /**
   * Deletes the run's checkpoints that no row records, before it resumes (nothing writes them
   * then): its objects in the object store (`objects`), and the files beside its recorded local
   * ones (where this host sees them). A retention pass removes rows first, then the checkpoints,
   * so a cluster killed in between leaves such orphans; a failure here is logged and the resume
   * goes on.
   */
  private async deleteOrphans(runId: string, objects: boolean): Promise<void> {
    await this.pruning.get(runId);
    try {
      const rows = listCheckpoints(this.db, runId);
      const recorded = new Set(rows.map((c) => c.path));
      const found = new Set<string>();
      if (objects) for (const c of await (await this.checkpoints.objects()).list(runId)) found.add(c.location);
      for (const dir of new Set(rows.filter((c) => !isObjectLocation(c.path)).map((c) => dirname(c.path)))) {
        if (!existsSync(dir)) continue;
        for (const f of readdirSync(dir)) if (f.endsWith('.safetensors')) found.add(join(dir, f));
      }
      const orphans = [...found].filter((location) => !recorded.has(location));
      if (orphans.length === 0) return;
      let bytesFreed = 0;
      for (const location of orphans) bytesFreed += await this.checkpoints.delete(location);
      addEvent(this.db, { runId, kind: 'checkpoints-deleted', detail: { paths: orphans, bytesFreed, orphans: true } });
      this.log(`run ${runId}: deleted ${orphans.length} checkpoint(s) no row recorded (a retention pass cut short)`);
    } catch (err) {
      this.log(`run ${runId}: could not look for orphaned checkpoints: ${(err as Error).message}`, 'warn');
    }
  }

  /** Waits for the retention passes in flight (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.pruning.size > 0) await Promise.all([...this.pruning.values()]);
  }

  reportMetrics(r: MetricsReport): void {
    const run = this.runs.get(r.run_id);
    const w = this.worker(r.worker_id);
    if (!run) {
      this.lateEpoch(w, r);
      return;
    }
    // Reports of an older generation of this member still count (an epoch that ended just
    // before a re-form); a worker that is no member of the run is refused.
    if (run.status !== 'RUNNING' || w.runId !== run.id || r.generation > run.generation)
      throw new NotAMemberError(w.id, r.run_id, r.generation, r.rank);
    if (r.collective_error) {
      this.collectiveFailed(run, w, r);
      return;
    }
    if (r.error) {
      this.end(run, 'FAILED', `rank ${r.rank} (${w.id}): ${r.error}`);
      return;
    }
    if (r.leaving) {
      this.memberLeaves(run, w, r.leaving);
      return;
    }
    if (r.backend || r.model_size_bytes > 0) this.recordEngine(run, r);
    if (r.energy_json) this.recordEnergy(run, w, r.energy_json);
    if (r.epoch === 0 && !r.done && !r.backend && !r.energy_json) this.progress(run, w, r);
    if (r.epoch > 0 && r.rank === 0) {
      const m = epochMetricsOf(r);
      run.tally.record(this.db, run.id, m);
      if (r.skipped_steps > 0) addEvent(this.db, { runId: run.id, kind: 'skipped', detail: { epoch: r.epoch, steps: r.skipped_steps } });
      this.events.publish('epoch', run.id, {
        epoch: m.epoch,
        epochs: run.config.train.epochs,
        trainLoss: m.trainLoss,
        trainAcc: m.trainAcc,
        testLoss: m.testLoss,
        testAcc: m.testAcc,
        samplesPerS: m.samplesPerS,
        // a member that finished its part is not lost, whatever its process does next
        workersAlive: run.members.filter((id) => run.finished.has(id) || this.workers.get(id)?.state === 'alive').length,
        worldSize: run.worldSize,
      });
    }
    if (r.done) {
      leaveRun(this.db, { runId: run.id, generation: run.generation, workerId: w.id, reason: 'completed' });
      run.finished.add(w.id);
      w.runId = null;
      if (r.rank === 0) this.end(run, 'COMPLETED');
    }
  }

  /**
   * An epoch report of a run that has ended here: recorded when it is rank 0's of the last
   * generation (the epoch's checkpoint, written just before it, is recorded too, so a resume from
   * it must find the epoch's metrics); anything else that arrives after the end is dropped.
   */
  private lateEpoch(w: WorkerEntry, r: MetricsReport): void {
    const e = this.ended.get(r.run_id);
    if (!e || r.epoch === 0 || r.rank !== 0 || r.generation !== e.generation || e.rank0 !== w.id) return;
    addEpochMetrics(this.db, r.run_id, epochMetricsOf(r));
  }

  /** The backend a rank's engine runs (rank 0's is the run's) and rank 0's model sizes. */
  private recordEngine(run: ActiveRun, r: MetricsReport): void {
    if (r.rank !== 0) return;
    if (r.backend && r.backend !== run.backend) {
      run.backend = r.backend;
      setRunBackend(this.db, run.id, r.backend);
    }
    if (r.model_size_bytes > 0) {
      run.modelSizeBytes = r.model_size_bytes;
      run.packedSizeBytes = r.packed_size_bytes > 0 ? r.packed_size_bytes : null;
    }
  }

  /** Energy a member measured (MetricsReport.energy_json), stored under it; a malformed report is logged and dropped. */
  private recordEnergy(run: ActiveRun, w: WorkerEntry, json: string): void {
    try {
      const e = JSON.parse(json) as { epoch?: unknown; at?: unknown; readings?: unknown };
      if (!Array.isArray(e.readings)) throw new Error('readings: expected an array');
      const at = typeof e.at === 'string' ? new Date(e.at) : new Date(this.now());
      if (Number.isNaN(at.getTime())) throw new Error(`at: expected an ISO time, got '${String(e.at)}'`);
      const epoch = typeof e.epoch === 'number' && Number.isInteger(e.epoch) && e.epoch > 0 ? e.epoch : null;
      const rows = (e.readings as Array<Record<string, unknown>>).map((r) => ({
        runId: run.id,
        workerId: w.id,
        epoch,
        at,
        watts: typeof r.watts === 'number' ? r.watts : null,
        joules: num(r.joules),
        source: String(r.source) as EnergySource,
        detail: { ...(typeof r.detail === 'object' && r.detail !== null ? r.detail : {}), intervalS: num(r.intervalS) },
      }));
      if (rows.length > 0) addEnergySamples(this.db, rows);
    } catch (err) {
      this.log(`run ${run.id}: energy report of ${w.id} dropped (${(err as Error).message})`, 'warn');
    }
  }

  /** A rank's progress report: kept for snapshots, published for monitors; nothing is stored. */
  private progress(run: ActiveRun, w: WorkerEntry, r: MetricsReport): void {
    let telemetry: Record<string, unknown> = {};
    try {
      const parsed: unknown = r.telemetry_json ? JSON.parse(r.telemetry_json) : {};
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) telemetry = parsed as Record<string, unknown>;
    } catch {
      /* monitoring only: unreadable telemetry is unknown */
    }
    w.progress = { step: r.steps, samplesPerS: r.samples_per_s, telemetry };
    const rejected = r.rejected_messages ?? 0;
    if (rejected > 0) this.messagesRejected(run, w, r, rejected);
    this.events.publish('progress', run.id, {
      workerId: w.id,
      rank: r.rank,
      generation: r.generation,
      step: r.steps,
      samplesPerS: r.samples_per_s,
      stepSeconds: r.step_seconds ?? [],
      allreduceBytes: r.allreduce_bytes ?? 0,
      allreduceSeconds: r.allreduce_seconds ?? 0,
      rejectedMessages: rejected,
      telemetry,
    });
  }

  /**
   * A member dropped collective messages whose MAC failed: someone without the run's secret
   * publishes on its subjects. An event names the first subjects of each step, for the run's
   * first REJECTION_EVENTS_PER_RUN such reports; after that they are only counted (the
   * `progress` event feeds bnn_collective_messages_rejected_total; the run's end records the total).
   */
  private messagesRejected(run: ActiveRun, w: WorkerEntry, r: MetricsReport, count: number): void {
    run.rejected.messages += count;
    if (run.rejected.events >= REJECTION_EVENTS_PER_RUN) return;
    run.rejected.events++;
    const subjects = (r.rejected_subjects ?? []).slice(0, 12);
    const last = run.rejected.events === REJECTION_EVENTS_PER_RUN;
    addEvent(this.db, {
      runId: run.id,
      kind: 'messages-rejected',
      detail: {
        workerId: w.id,
        rank: r.rank,
        generation: r.generation,
        count,
        subjects,
        ...(last ? { note: 'later rejections are only counted: bnn_collective_messages_rejected_total, and the run end' } : {}),
      },
    });
    this.log(
      `run ${run.id}: rank ${r.rank} dropped ${count} collective message(s) failing their MAC (${subjects.join(', ')})` +
        (last ? '; later ones are only counted' : ''),
      'warn',
    );
  }

  cancel(runId: string): RunInfo {
    const row = getRun(this.db, runId);
    const run = this.runs.get(row.id);
    if (run) this.end(run, 'CANCELLED', 'cancelled (CancelRun)');
    return this.info(row.id);
  }

  private end(run: ActiveRun, status: 'COMPLETED' | 'FAILED' | 'CANCELLED', error?: string): void {
    this.runs.delete(run.id);
    if (status !== 'COMPLETED' && run.members[0]) {
      this.ended.set(run.id, { generation: run.generation, rank0: run.members[0] });
      // a short memory: late reports come within seconds
      if (this.ended.size > 64) this.ended.delete(this.ended.keys().next().value!);
    }
    // a resumed run adds this attempt's wall time to the earlier ones'
    const wallTimeS = run.wallTimeBeforeS + (run.startedMs ? (this.now() - run.startedMs) / 1000 : 0);
    finishRun(this.db, run.id, status, {
      finalTestAcc: run.tally.finalTestAcc,
      bestTestAcc: run.tally.bestTestAcc,
      wallTimeS,
      samplesPerS: run.tally.samplesPerS,
      modelSizeBytes: run.modelSizeBytes,
      packedSizeBytes: run.packedSizeBytes,
      error: error ?? null,
    });
    if (run.status === 'RUNNING')
      endGeneration(this.db, run.id, run.generation, status === 'COMPLETED' ? 'completed' : status.toLowerCase());
    if (run.rejected.messages > 0)
      addEvent(this.db, { runId: run.id, kind: 'messages-rejected-total', detail: { count: run.rejected.messages } });
    for (const id of run.members) {
      const w = this.workers.get(id);
      if (!w || w.runId !== run.id) continue;
      w.runId = null;
      // After COMPLETED only a member that has not finished is still here (one that joined the
      // last generation too late to train): it is released too.
      w.queue?.push({ kind: 'STOP', run_id: run.id, reason: error ?? status });
    }
    this.events.publish('run', run.id, { status, error: error ?? null });
    this.log(`run ${run.id} ${status}${error ? `: ${error}` : ''}`, status === 'FAILED' ? 'error' : 'info');
    // the queue moved: the runs behind this one (if it was PENDING) wait for less
    // the last epoch's accuracy is known now: the best checkpoint may have changed
    this.retain(run.id, run.config);
    this.schedule();
  }

  /** Ages workers: suspect, then dead (a dead member fails its run). */
  sweep(): void {
    const now = this.now();
    const { suspectAfterMs, deadAfterMs } = this.deps.options;
    for (const w of this.workers.values()) {
      if (w.state === 'dead') continue;
      const silent = now - w.lastSeenMs;
      if (silent >= deadAfterMs) this.declareDead(w, silent);
      else if (silent >= suspectAfterMs && w.state === 'alive') {
        w.state = 'suspect';
        this.events.publish('worker', w.runId ?? '', { workerId: w.id, state: 'suspect', silentMs: silent });
        this.log(`worker ${w.id} suspect (silent ${silent} ms)`, 'warn');
      }
    }
    // a suspect or dead worker is no longer idle
    this.updateWaiting();
  }

  /**
   * A member leaves its run on purpose (its process was asked to stop): recorded `left` with why,
   * never suspect or dead; the group re-forms without it (or the run fails when none is left, as
   * after a death). Its stream closing next is an idle worker's leaving.
   */
  private memberLeaves(run: ActiveRun, w: WorkerEntry, why: string): void {
    const rank = run.members.indexOf(w.id);
    leaveRun(this.db, { runId: run.id, generation: run.generation, workerId: w.id, reason: 'left', why });
    run.members = run.members.filter((id) => id !== w.id);
    w.runId = null;
    w.leaving = true;
    this.events.publish('worker', run.id, { workerId: w.id, state: 'left', hostname: w.hostname, why });
    this.log(`worker ${w.id} (rank ${rank}) left run ${run.id}: ${why}`);
    this.reform(run, `worker ${w.id} (rank ${rank}) left: ${why}`);
  }

  /** An idle worker went away on purpose: forgotten, with a `left` event (never suspect or dead). */
  private leave(w: WorkerEntry): void {
    this.workers.delete(w.id);
    w.state = 'dead';
    addEvent(this.db, { kind: 'left', detail: { workerId: w.id, hostname: w.hostname } });
    this.events.publish('worker', '', { workerId: w.id, state: 'left', hostname: w.hostname });
    this.log(`worker ${w.id} left`);
    this.updateWaiting();
  }

  /** A dead member leaves its run, whose group is re-formed without it (unless `reform` is false: the caller re-forms). */
  private declareDead(w: WorkerEntry, silentMs: number, why = `silent ${silentMs} ms`, reform = true): void {
    w.state = 'dead';
    const queue = w.queue;
    w.queue = null;
    this.workers.delete(w.id);
    this.events.publish('worker', w.runId ?? '', { workerId: w.id, state: 'dead', silentMs, why });
    this.log(`worker ${w.id} dead (${why})`, 'warn');
    const run = w.runId ? this.runs.get(w.runId) : undefined;
    if (run) {
      const rank = run.members.indexOf(w.id);
      leaveRun(this.db, { runId: run.id, generation: run.generation, workerId: w.id, reason: 'dead' });
      run.members = run.members.filter((id) => id !== w.id);
      if (reform) this.reform(run, `worker ${w.id} (rank ${rank}) lost: ${why}`);
    } else {
      addEvent(this.db, { kind: 'dead', detail: { workerId: w.id, silentMs, why } });
    }
    queue?.stop();
  }

  info(runId: string): RunInfo {
    const row = getRun(this.db, runId);
    const run = this.runs.get(row.id);
    return {
      run_id: row.id,
      status: row.status,
      generation: run?.generation ?? 0,
      world_size: run?.worldSize ?? 0,
      error: row.error ?? '',
      epochs_done: listEpochMetrics(this.db, row.id).length,
      epochs: row.config.train.epochs,
      resumed_from: '',
      resumed_step: 0,
      warnings: [],
      waiting: run?.status === 'PENDING' ? (run.waiting ?? '') : '',
      queue_position: run?.status === 'PENDING' ? this.queued().indexOf(run) + 1 : 0,
      priority: run?.priority ?? 0,
    };
  }

  watch(runId: string): AsyncQueue<ClusterEvent> {
    return this.events.watch(runId);
  }

  /** Workers and active runs as they are now, for monitors. */
  snapshot(): ClusterSnapshot {
    const now = this.now();
    const workers = [...this.workers.values()].map((w): WorkerSnapshot => {
      const run = w.runId ? this.runs.get(w.runId) : undefined;
      const p = run ? w.progress : undefined;
      return {
        id: w.id,
        hostname: w.hostname,
        state: w.state,
        threads: w.threads,
        backend: w.backend,
        runId: w.runId,
        rank: run ? run.members.indexOf(w.id) : null,
        heartbeatAgeS: Math.max(0, now - w.lastSeenMs) / 1000,
        step: p?.step ?? null,
        samplesPerS: p?.samplesPerS ?? null,
        telemetry: p?.telemetry ?? {},
      };
    });
    const queue = this.queued();
    const runs = [...this.runs.values()].map(
      (r): RunSnapshot => ({
        id: r.id,
        name: r.config.name,
        status: r.status,
        generation: r.generation,
        worldSize: r.worldSize,
        members: [...r.members],
        epochs: r.config.train.epochs,
        priority: r.priority,
        waiting: r.status === 'PENDING' ? r.waiting : null,
        queuePosition: r.status === 'PENDING' ? queue.indexOf(r) + 1 : null,
      }),
    );
    return { workers, runs };
  }

  /**
   * The coordinator is going away: every active run ends FAILED with `reason` (`bnn resume`
   * continues it) and its members are told to STOP. Resolves once rank 0 of each run that was
   * training has recorded its checkpoint at the step it stopped (as after a CancelRun) or left,
   * or after `graceMs`, whichever comes first; says which on the log.
   */
  async stopActive(reason: string, graceMs: number): Promise<void> {
    const rank0 = new Map<string, string>(); // run → the worker that checkpoints it
    for (const run of this.runs.values()) if (run.status === 'RUNNING' && run.members[0]) rank0.set(run.id, run.members[0]);
    const events = this.events.watch('');
    for (const run of [...this.runs.values()]) this.end(run, 'FAILED', reason);
    if (rank0.size > 0) this.log(`waiting up to ${graceMs} ms for rank 0 of ${rank0.size} run(s) to checkpoint where it stopped`);
    const timer = setTimeout(() => events.stop(), graceMs);
    for await (const ev of events) {
      const d = JSON.parse(ev.detail_json) as { step?: number; workerId?: string; state?: string };
      if (ev.kind === 'checkpoint' && rank0.delete(ev.run_id))
        this.log(`run ${ev.run_id}: rank 0 checkpointed step ${d.step} on its way out`);
      if (ev.kind === 'worker' && (d.state === 'left' || d.state === 'dead')) {
        for (const [runId, w] of rank0) {
          if (w === d.workerId && rank0.delete(runId)) this.log(`run ${runId}: rank 0 ${d.state} without a newer checkpoint`);
        }
      }
      if (rank0.size === 0) break;
    }
    clearTimeout(timer);
    for (const runId of rank0.keys())
      this.log(`run ${runId}: rank 0 did not checkpoint within ${graceMs} ms; it resumes from its last recorded checkpoint`);
  }

  /**
   * The coordinator's own NATS connections (the checkpoint object store's; the all-reduce's are the
   * workers'): 'none' when it holds none and needs none. With `checkpointStore: 'nats'` it needs
   * one, so a call that finds none starts opening it and answers 'connecting'.
   */
  natsConnection(): ObjectStoreConnection {
    const held = this.checkpoints.connection();
    if (held !== 'none' || this.deps.options.checkpointStore !== 'nats' || this.closing || !this.checkpoints.hasObjects) return held;
    this.checkpoints.objects().catch((err: unknown) => this.log(`checkpoint object store: ${(err as Error).message}`, 'error'));
    return 'connecting';
  }

  /** Stops the sweep and every stream; runs still active are left as they are in the store. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweepTimer);
    for (const w of this.workers.values()) w.queue?.stop();
    this.events.close();
  }

  /** After `close`: waits for retention in flight, then closes the checkpoint stores' connections. */
  async closeStores(): Promise<void> {
    await this.settled();
    await this.checkpoints.close();
  }
}
