import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { configHash } from '../src/config/hash.js';
import { defaultRunConfig, type Precision, type RunConfig } from '../src/config/schema.js';
import { migrationsFolder } from '../src/store/db.js';

/**
 * For tests (not a test file): experiment databases as older releases wrote them. The
 * schema is made by the checked-in migrations up to a version, and rows are written with
 * plain SQL naming only that schema's columns (the store API writes today's schema).
 */

/** A migrations folder holding the first `version` checked-in migrations (as that release shipped it). */
export function migrationsUpTo(dir: string, version: number): string {
  const folder = join(dir, `drizzle-schema${version}`);
  mkdirSync(join(folder, 'meta'), { recursive: true });
  const journal = JSON.parse(readFileSync(join(migrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] };
  const entries = journal.entries.slice(0, version);
  if (entries.length !== version) throw new Error(`only ${journal.entries.length} migrations are checked in`);
  for (const e of entries) copyFileSync(join(migrationsFolder(), `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries }));
  return folder;
}

/**
 * A database file at schema `version` (1 = the foundation's, no `meta` table; 2 and later
 * record `meta.schema_version`, as those releases did). Returns the open raw connection.
 */
export function legacyStore(dir: string, file: string, version: number): Database.Database {
  const raw = new Database(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('foreign_keys = ON');
  migrate(drizzle(raw), { migrationsFolder: migrationsUpTo(dir, version) });
  if (version >= 2) raw.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(version));
  return raw;
}

export interface LegacyRunInput {
  id: string;
  name: string;
  precision: Precision;
  status: 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  createdAt: string;
  tags?: string[];
  seed?: number;
  finalTestAcc?: number | null;
  samplesPerS?: number | null;
}

/** Inserts a run with the columns every schema has, and its `created` event; returns its config. */
export function insertLegacyRun(raw: Database.Database, run: LegacyRunInput): RunConfig {
  const base = defaultRunConfig();
  const config: RunConfig = {
    ...base,
    name: run.name,
    tags: run.tags ?? [],
    seed: run.seed ?? 0,
    model: { ...base.model, precision: run.precision },
  };
  const done = run.status === 'COMPLETED';
  raw
    .prepare(
      `INSERT INTO runs (id, name, tags, config, config_hash, precision, model, dataset, seed, status, code_version, backend, threads,
        created_at, started_at, finished_at, final_test_acc, best_test_acc, model_size_bytes, packed_size_bytes, wall_time_s, samples_per_s, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '0.0.9', 'cpu', 1, ?, ?, ?, ?, ?, 4000000, NULL, ?, ?, NULL)`,
    )
    .run(
      run.id,
      run.name,
      JSON.stringify(config.tags),
      JSON.stringify(config),
      configHash(config),
      run.precision,
      config.model.arch,
      config.dataset.name,
      config.seed,
      run.status,
      run.createdAt,
      run.status === 'PENDING' ? null : run.createdAt,
      done ? run.createdAt : null,
      run.finalTestAcc ?? null,
      run.finalTestAcc ?? null,
      done ? 60 : null,
      run.samplesPerS ?? null,
    );
  raw.prepare("INSERT INTO events (run_id, at, kind, detail) VALUES (?, ?, 'created', '{}')").run(run.id, run.createdAt);
  return config;
}

/** One epoch's metrics (samples trained = round(samplesPerS × epochTimeS)). */
export function insertLegacyEpoch(
  raw: Database.Database,
  runId: string,
  epoch: number,
  samplesPerS: number,
  epochTimeS: number,
  testAcc = 0.85,
): void {
  raw
    .prepare(
      `INSERT INTO epoch_metrics (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, samples_per_s, epoch_time_s)
       VALUES (?, ?, 0.5, 0.8, 0.4, ?, 0.001, ?, ?)`,
    )
    .run(runId, epoch, testAcc, samplesPerS, epochTimeS);
}

/** One energy sample (schema 2 and later). */
export function insertLegacyEnergy(
  raw: Database.Database,
  runId: string,
  epoch: number | null,
  joules: number,
  source: 'nvml' | 'rapl' | 'estimate',
): void {
  raw
    .prepare(
      "INSERT INTO energy_samples (run_id, worker_id, epoch, at, watts, joules, source, detail) VALUES (?, NULL, ?, '2025-01-01T00:00:00.000Z', NULL, ?, ?, '{}')",
    )
    .run(runId, epoch, joules, source);
}
