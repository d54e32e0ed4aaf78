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
  },
  (t) => [
    index('runs_created_at_idx').on(t.createdAt),
    index('runs_status_idx').on(t.status),
    index('runs_config_hash_idx').on(t.configHash),
    index('runs_name_idx').on(t.name),
    index('runs_compare_idx').on(t.dataset, t.model, t.precision, t.seed),
    check(
      'runs_status_check',
      sql.raw(`status IN (${RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`),
    ),
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
  (t) => [uniqueIndex('epoch_metrics_run_epoch_idx').on(t.runId, t.epoch)],
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
    /** e.g. created, started, completed, failed, cancelled, resumed, joined, left. */
    kind: text('kind').notNull(),
    detail: text('detail', { mode: 'json' }).$type<Record<string, unknown>>(),
  },
  (t) => [index('events_run_at_idx').on(t.runId, t.at), index('events_kind_idx').on(t.kind)],
);

export type RunRow = typeof runs.$inferSelect;
export type NewRunRow = typeof runs.$inferInsert;
export type EpochMetricsRow = typeof epochMetrics.$inferSelect;
export type NewEpochMetricsRow = typeof epochMetrics.$inferInsert;
export type CheckpointRow = typeof checkpoints.$inferSelect;
export type NewCheckpointRow = typeof checkpoints.$inferInsert;
export type EventRow = typeof events.$inferSelect;
export type NewEventRow = typeof events.$inferInsert;
