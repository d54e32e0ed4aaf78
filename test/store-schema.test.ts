import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { defaultRunConfig } from '../src/config/schema.js';
import {
  addEnergySample,
  createRun,
  currentSchemaVersion,
  energyByRun,
  getRun,
  listRuns,
  openStore,
  StoreError,
  StoreSchemaTooNewError,
} from '../src/store/index.js';
import { insertLegacyRun, legacyStore } from './store-legacy.js';
import { tmpDir } from './helpers/tmp.js';

const tables = (db: Database.Database): string[] =>
  (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]
  ).map((r) => r.name);

const metaVersion = (db: Database.Database): string | undefined =>
  (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value;

test('store schema - an empty file migrates to the current schema and records its version', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  t.after(() => store.close());
  for (const name of ['workers', 'hardware_snapshots', 'run_members', 'step_metrics', 'energy_samples', 'meta']) {
    assert.ok(tables(store.sqlite).includes(name), name);
  }
  assert.equal(metaVersion(store.sqlite), String(currentSchemaVersion()));
  assert.equal(store.sqlite.pragma('journal_mode', { simple: true }), 'wal');
  const indexes = (
    store.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]
  ).map((r) => r.name);
  for (const name of [
    'step_metrics_run_step_idx',
    'energy_samples_run_epoch_idx',
    'hardware_snapshots_run_idx',
    'run_members_run_gen_rank_idx',
  ]) {
    assert.ok(indexes.includes(name), name);
  }
  // The energy source is constrained in the file itself, for writers other than this code.
  const run = createRun(store.db, { config: defaultRunConfig(), codeVersion: 'x' });
  assert.throws(
    () => store.sqlite.prepare("INSERT INTO energy_samples (run_id, at, joules, source) VALUES (?, 'now', 1, 'guess')").run(run.id),
    /CHECK constraint failed/,
  );
});

test('store schema - a database made with only the first migration is upgraded and keeps its runs', async (t) => {
  const dir = await tmpDir({ t });
  // As the first release wrote it: migration 0000 alone, no meta table, rows in that schema's columns.
  const file = dir.join('old.db');
  const raw = legacyStore(dir.path, file, 1);
  assert.deepEqual(tables(raw), ['__drizzle_migrations', 'checkpoints', 'epoch_metrics', 'events', 'runs']);
  const id = 'r-20250101-000000-0001';
  const config = insertLegacyRun(raw, {
    id,
    name: 'from-v1',
    precision: 'binary',
    status: 'RUNNING',
    createdAt: '2025-01-01T00:00:00.000Z',
    tags: ['old'],
  });
  raw.close();

  // An up-to-date build refuses to read it read-only (it would need writing) ...
  assert.throws(
    () => openStore(file, { readonly: true }),
    new RegExp(
      `its schema is ${currentSchemaVersion() - 1} migration\\(s\\) behind \\(schema 1, this build writes ${currentSchemaVersion()}\\)`,
    ),
  );
  // ... and upgrades it on a normal open, keeping the run and its events.
  const store = openStore(file);
  t.after(() => store.close());
  assert.equal(metaVersion(store.sqlite), String(currentSchemaVersion()));
  assert.ok(tables(store.sqlite).includes('energy_samples'));
  const kept = getRun(store.db, id);
  assert.equal(kept.name, 'from-v1');
  assert.deepEqual(kept.tags, ['old']);
  assert.equal(kept.status, 'RUNNING');
  assert.deepEqual(kept.config, config);
  assert.deepEqual([kept.energyJoules, kept.energySources, kept.trainedSamples], [null, null, null], 'no rows: no totals');
  assert.deepEqual(
    listRuns(store.db).map((r) => r.id),
    [id],
  );
  // The old run takes new-table rows.
  addEnergySample(store.db, { runId: id, joules: 12.5, source: 'estimate' });
  assert.equal(energyByRun(store.db, id).joules, 12.5);
  assert.deepEqual([getRun(store.db, id).energyJoules, getRun(store.db, id).energySources], [12.5, 'estimate']);
  store.close();
  // Reopening applies nothing again.
  const again = openStore(file, { readonly: true });
  assert.equal((again.sqlite.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number }).n, currentSchemaVersion());
  again.close();
});

test('store schema - a database from a newer bnn-cluster is refused with both versions named, and left alone', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('future.db');
  openStore(file).close();
  const raw = new Database(file);
  const future = currentSchemaVersion() + 1;
  raw.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(future));
  raw.close();
  const expected = `${file}: was written by a newer bnn-cluster (schema ${future}, this build knows ${currentSchemaVersion()}); upgrade bnn-cluster`;
  for (const readonly of [false, true]) {
    assert.throws(
      () => openStore(file, { readonly }),
      (err: unknown) => {
        assert.ok(err instanceof StoreSchemaTooNewError);
        assert.ok(err instanceof StoreError);
        assert.equal(err.message, expected);
        assert.equal(err.fileVersion, future);
        assert.equal(err.knownVersion, currentSchemaVersion());
        return true;
      },
    );
  }
  const check = new Database(file, { readonly: true });
  assert.equal(metaVersion(check), String(future), 'the newer version is not overwritten');
  check.close();
});

test('store schema - WAL: a reader reads while a writer transaction is open, and sees the commit after', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('bnn.db');
  const writer = openStore(file);
  t.after(() => writer.close());
  const run = createRun(writer.db, { config: { ...defaultRunConfig(), name: 'before' }, codeVersion: 'x' });

  writer.sqlite.prepare('BEGIN IMMEDIATE').run();
  writer.sqlite.prepare("UPDATE runs SET name = 'during' WHERE id = ?").run(run.id);
  writer.sqlite.prepare("INSERT INTO energy_samples (run_id, at, joules, source) VALUES (?, 'x', 5, 'rapl')").run(run.id);

  // busy timeout 0: any lock wait would fail at once instead of hanging.
  const reader = openStore(file, { readonly: true, busyTimeoutMs: 0 });
  t.after(() => reader.close());
  const t0 = performance.now();
  assert.equal(getRun(reader.db, run.id).name, 'before');
  assert.equal(energyByRun(reader.db, run.id).joules, 0);
  assert.ok(performance.now() - t0 < 500, 'the reader did not wait for the writer');
  // A second read-write open (another `bnn` process) does not need the write lock either.
  const second = openStore(file, { busyTimeoutMs: 0 });
  assert.equal(listRuns(second.db).length, 1);
  second.close();

  writer.sqlite.prepare('COMMIT').run();
  assert.equal(getRun(reader.db, run.id).name, 'during');
  assert.equal(energyByRun(reader.db, run.id).joules, 5);
});
