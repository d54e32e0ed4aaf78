import { sql } from 'drizzle-orm';
import { check, index, integer, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import type { RunConfig } from '../config/schema.js';

/**
 * The experiment database. The file is the interface: any SQLite tool can read it, so
 * columns hold plain values (JSON as text, times as ISO-8601 UTC text such as
 * `2025-01-31T12:00:00.000Z`, accuracies as fractions in [0, 1]).
 * Change a table here, then run `npx drizzle-kit generate` and commit drizzle/.
 */

export const RUN_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const runs = sqliteTable(
  'runs',
  {
    /** `r-<yyyymmdd>-<hhmmss>-<4 hex>` (UTC). */
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    tags: text('tags', { mode: 'json' }).$type<string[]>().notNull(),
    config: text('config', { mode: 'json' }).$type<RunConfig>().notNull(),
    configHash: text('config_hash').notNull(),
    precision: text('precision').notNull(),
    /** Architecture (`model.arch`). */
    model: text('model').notNull(),
    dataset: text('dataset').notNull(),
    seed: integer('seed').notNull(),
    status: text('status').$type<RunStatus>().notNull(),
    /** Package version, plus `+g<sha>` when run from a git checkout. */
    codeVersion: text('code_version').notNull(),
    /** Requested backend until the run starts, then the one actually used. */
    backend: text('backend').notNull(),
    threads: integer('threads').notNull(),
    createdAt: text('created_at').notNull(),
    startedAt: text('started_at'),
    finishedAt: text('finished_at'),
    finalTestAcc: real('final_test_acc'),
    bestTestAcc: real('best_test_acc'),
    /** fp32 bytes of all parameters. */
    modelSizeBytes: integer('model_size_bytes'),
    /** Bytes with binary weights bit-packed; null where not measured. */
    packedSizeBytes: integer('packed_size_bytes'),
    wallTimeS: real('wall_time_s'),
    samplesPerS: real('samples_per_s'),
    error: text('error'),
    // Schema 4: per-run totals, kept by the store functions that write energy samples and
    // epoch metrics (in the same transaction; see src/store/totals.ts), so `bnn compare` and
    // `bnn report` read J/sample from the run row instead of summing millions of rows.
    /** Joules of all the run's energy samples (every worker, epoch and source); null when it has none. */
    energyJoules: real('energy_joules'),
    /** The sources of those samples, `+`-joined in nvml, rapl, estimate order (`rapl`, `nvml+rapl`, `estimate`); null when none. */
    energySources: text('energy_sources'),
    /** Training samples over the run's epoch metrics (Σ round(samples_per_s × epoch_time_s)); null when it has none. */
    trainedSamples: integer('trained_samples'),
    // Schema 5: the process that owns the run while it is PENDING or RUNNING (`bnn train`, or the
    // coordinator of a cluster run), set when the run is created, started or resumed. A RUNNING
    // run whose owner is gone was orphaned (killed, crashed, its host restarted): the query
    // commands show it as ABANDONED (src/query/liveness.ts); the status stored stays RUNNING.
    /** `os.hostname()` of the owner; null for runs recorded before schema 5. */
    ownerHost: text('owner_host'),
    ownerPid: integer('owner_pid'),
    /** `<boot id>:<pid namespace inode>:<start time in clock ticks after boot>` of the owner (Linux /proc), which tells it from a later process with its pid; null where unknown. */
    ownerStart: text('owner_start'),
  },
  (t) => [
    index('runs_status_idx').on(t.status),
    index('runs_config_hash_idx').on(t.configHash),
    index('runs_name_idx').on(t.name),
    index('runs_compare_idx').on(t.dataset, t.model, t.precision, t.seed),
    // Schema 3, for research-scale stores (`bnn bench-store`): `bnn runs` newest first without
    // a sort step, and `bnn compare` reading COMPLETED runs in creation order. Schema 4 dropped
    // runs_created_at_idx (created_at alone): this one serves every query that one did.
    index('runs_created_at_id_idx').on(t.createdAt, t.id),
    // Schema 4 replaced runs_status_created_at_idx (status, created_at, id) with this one, its
    // prefix plus every column `bnn compare` reads: compare walks this index alone (a few MB)
    // instead of every compared run's row with its config JSON (most of a row's bytes).
    index('runs_status_compare_idx').on(
      t.status,
      t.createdAt,
      t.id,
      t.precision,
      t.model,
      t.dataset,
      t.name,
      t.finalTestAcc,
      t.bestTestAcc,
      t.samplesPerS,
      t.wallTimeS,
      t.modelSizeBytes,
      t.packedSizeBytes,
      t.energyJoules,
      t.energySources,
      t.trainedSamples,
    ),
    check('runs_status_check', sql.raw(`status IN (${RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`)),
  ],
);

export const epochMetrics = sqliteTable(
  'epoch_metrics',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** 1-based. */
    epoch: integer('epoch').notNull(),
    trainLoss: real('train_loss').notNull(),
    trainAcc: real('train_acc').notNull(),
    /** Null when the epoch was not evaluated (`train.evalEveryEpoch: false`). */
    testLoss: real('test_loss'),
    testAcc: real('test_acc'),
    /** Learning rate of the fp32 group at the end of the epoch. */
    lr: real('lr').notNull(),
    samplesPerS: real('samples_per_s').notNull(),
    epochTimeS: real('epoch_time_s').notNull(),
  },
  (t) => [
    uniqueIndex('epoch_metrics_run_epoch_idx').on(t.runId, t.epoch),
    // Schema 3: covers the samples-per-run sum behind J/sample, so compare reads no table rows.
    index('epoch_metrics_run_samples_idx').on(t.runId, t.samplesPerS, t.epochTimeS),
  ],
);

export const checkpoints = sqliteTable(
  'checkpoints',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    epoch: integer('epoch').notNull(),
    /** Optimizer steps completed since the start of the run. */
    step: integer('step').notNull(),
    path: text('path').notNull(),
    sha256: text('sha256').notNull(),
    bytes: integer('bytes').notNull(),
    createdAt: text('created_at').notNull(),
  },
  (t) => [index('checkpoints_run_step_idx').on(t.runId, t.step)],
);

export const events = sqliteTable(
  'events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** Null for events that belong to no run (a worker joining the cluster). */
    runId: text('run_id').references(() => runs.id, { onDelete: 'cascade' }),
    at: text('at').notNull(),
    /** One of EVENT_KINDS by convention (free text, so older builds can read newer kinds). */
    kind: text('kind').notNull(),
    detail: text('detail', { mode: 'json' }).$type<Record<string, unknown>>(),
  },
  (t) => [index('events_run_at_idx').on(t.runId, t.at), index('events_kind_idx').on(t.kind)],
);

/**
 * Event kinds written by this build. Run lifecycle: created, started, resumed, completed,
 * failed, cancelled. Cluster membership: joined (a worker registered or joined a run's
 * group), left (it left cleanly), suspect (heartbeats late), dead (declared lost). Training:
 * skipped (an epoch's steps skipped for a NaN or Inf loss or gradient, `detail.steps`).
 */
export const EVENT_KINDS = [
  'created',
  'started',
  'resumed',
  'completed',
  'failed',
  'cancelled',
  'joined',
  'left',
  'suspect',
  'dead',
  'skipped',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** Key/value facts about the file itself; `schema_version` guards against older builds. */
export const meta = sqliteTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

/** A host that ran training for the cluster; the embedded trainer (`bnn train`) has none. */
export const workers = sqliteTable(
  'workers',
  {
    /** Chosen by the coordinator at registration; stable across reconnects of one process. */
    id: text('id').primaryKey(),
    hostname: text('hostname').notNull(),
    firstSeen: text('first_seen').notNull(),
    lastSeen: text('last_seen').notNull(),
  },
  (t) => [index('workers_hostname_idx').on(t.hostname), index('workers_last_seen_idx').on(t.lastSeen)],
);

/** ISA features (the CPU's flags: x86 `flags`, arm `Features`), by flag name. */
export type IsaFlags = Record<string, boolean>;

/** The hardware and software a worker (or the embedded trainer, worker_id null) ran on. */
export const hardwareSnapshots = sqliteTable(
  'hardware_snapshots',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** Null for the embedded trainer (`bnn train`). */
    workerId: text('worker_id').references(() => workers.id, { onDelete: 'cascade' }),
    /** Null for a snapshot taken at worker registration, before any run. */
    runId: text('run_id').references(() => runs.id, { onDelete: 'cascade' }),
    at: text('at').notNull(),
    cpuModel: text('cpu_model').notNull(),
    /** Physical cores (logical CPUs where unknown). */
    cpuCores: integer('cpu_cores').notNull(),
    /** Logical CPUs (hardware threads). */
    cpuThreads: integer('cpu_threads').notNull(),
    /** e.g. `{"avx2": true, "avx512f": true, "avx512_vpopcntdq": false}`. */
    isaFlags: text('isa_flags', { mode: 'json' }).$type<IsaFlags>().notNull(),
    memoryBytes: integer('memory_bytes').notNull(),
    /** The selected GPU's name (the first when none was selected); null when no NVIDIA GPU was found. */
    gpuModel: text('gpu_model'),
    gpuDriver: text('gpu_driver'),
    gpuMemoryBytes: integer('gpu_memory_bytes'),
    gpuCount: integer('gpu_count').notNull().default(0),
    /** The GPU the worker was given (`bnn worker --gpu`), the one gpu_model/gpu_driver/gpu_memory_bytes describe; null: none given (they describe the first GPU). */
    gpuIndex: integer('gpu_index'),
    /** `platform release arch`, e.g. `linux 6.8.0 x64`. */
    os: text('os').notNull(),
    nodeVersion: text('node_version').notNull(),
    /** Versions of the packages that shape results, by package name (bnn-cluster, @tensorflow/tfjs, ...). */
    packageVersions: text('package_versions', { mode: 'json' }).$type<Record<string, string>>().notNull(),
  },
  (t) => [index('hardware_snapshots_run_idx').on(t.runId), index('hardware_snapshots_worker_at_idx').on(t.workerId, t.at)],
);

/** Who trained a run in each generation (a membership change starts a new generation). */
export const runMembers = sqliteTable(
  'run_members',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** 0-based; bumped by the coordinator on every membership change. */
    generation: integer('generation').notNull(),
    workerId: text('worker_id')
      .notNull()
      .references(() => workers.id, { onDelete: 'cascade' }),
    rank: integer('rank').notNull(),
    worldSize: integer('world_size').notNull(),
    joinedAt: text('joined_at').notNull(),
    /** Null while the worker is still in this generation. */
    leftAt: text('left_at'),
    /** Why it left: e.g. `generation-ended`, `dead`, `left`, `completed`. */
    reason: text('reason'),
  },
  (t) => [
    uniqueIndex('run_members_run_gen_rank_idx').on(t.runId, t.generation, t.rank),
    uniqueIndex('run_members_run_gen_worker_idx').on(t.runId, t.generation, t.workerId),
    index('run_members_worker_idx').on(t.workerId),
    check('run_members_rank_check', sql`rank >= 0 AND rank < world_size`),
  ],
);

/** Per-step training metrics (optional, sampled: every step or every N steps). */
export const stepMetrics = sqliteTable(
  'step_metrics',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** Optimizer steps completed since the start of the run (1-based). */
    step: integer('step').notNull(),
    /** 1-based epoch the step belongs to. */
    epoch: integer('epoch').notNull(),
    loss: real('loss').notNull(),
    /** Training accuracy of the step's batch, as a fraction; null where not measured. */
    accuracy: real('accuracy'),
    lr: real('lr').notNull(),
    samplesPerS: real('samples_per_s'),
    at: text('at').notNull(),
  },
  (t) => [uniqueIndex('step_metrics_run_step_idx').on(t.runId, t.step)],
);

export const ENERGY_SOURCES = ['nvml', 'rapl', 'estimate'] as const;
/** nvml: GPU board power (nvidia-smi); rapl: CPU package counters; estimate: CPU time × watts per core. */
export type EnergySource = (typeof ENERGY_SOURCES)[number];

/** Energy used over an interval, by one source on one worker (or the embedded trainer). */
export const energySamples = sqliteTable(
  'energy_samples',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** Null for the embedded trainer. */
    workerId: text('worker_id').references(() => workers.id, { onDelete: 'cascade' }),
    /** 1-based epoch the interval ended in; null for samples not tied to an epoch. */
    epoch: integer('epoch'),
    /** End of the interval. */
    at: text('at').notNull(),
    /** Mean power over the interval; null where unknown. */
    watts: real('watts'),
    /** Energy over the interval (joules, not cumulative). */
    joules: real('joules').notNull(),
    source: text('source').$type<EnergySource>().notNull(),
    /** Source specifics: interval seconds, domains or GPUs read, the estimate's watts per core. */
    detail: text('detail', { mode: 'json' }).$type<Record<string, unknown>>(),
  },
  (t) => [
    index('energy_samples_run_epoch_idx').on(t.runId, t.epoch),
    // Schema 3: covers joules by run and source (J/sample in compare and report).
    index('energy_samples_run_source_idx').on(t.runId, t.source, t.joules),
    index('energy_samples_worker_idx').on(t.workerId),
    check('energy_samples_source_check', sql.raw(`source IN (${ENERGY_SOURCES.map((s) => `'${s}'`).join(', ')})`)),
    check('energy_samples_joules_check', sql`joules >= 0`),
  ],
);

export type RunRow = typeof runs.$inferSelect;
export type NewRunRow = typeof runs.$inferInsert;
export type EpochMetricsRow = typeof epochMetrics.$inferSelect;
export type NewEpochMetricsRow = typeof epochMetrics.$inferInsert;
export type CheckpointRow = typeof checkpoints.$inferSelect;
export type NewCheckpointRow = typeof checkpoints.$inferInsert;
export type EventRow = typeof events.$inferSelect;
export type NewEventRow = typeof events.$inferInsert;
export type MetaRow = typeof meta.$inferSelect;
export type WorkerRow = typeof workers.$inferSelect;
export type NewWorkerRow = typeof workers.$inferInsert;
export type HardwareSnapshotRow = typeof hardwareSnapshots.$inferSelect;
export type NewHardwareSnapshotRow = typeof hardwareSnapshots.$inferInsert;
export type RunMemberRow = typeof runMembers.$inferSelect;
export type NewRunMemberRow = typeof runMembers.$inferInsert;
export type StepMetricsRow = typeof stepMetrics.$inferSelect;
export type NewStepMetricsRow = typeof stepMetrics.$inferInsert;
export type EnergySampleRow = typeof energySamples.$inferSelect;
export type NewEnergySampleRow = typeof energySamples.$inferInsert;
