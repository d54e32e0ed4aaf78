import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { tmpDir } from '../../test/helpers/tmp.js';
import { configHash } from '../config/hash.js';
import { defaultRunConfig } from '../config/schema.js';
import { addCheckpoint, latestCheckpoint } from './checkpoints.js';
import { currentSchemaVersion, DEFAULT_LOCK_TIMEOUT_MS, openStore, type Store } from './db.js';
import { RunNotFoundError, RunStateError, StoreError } from './errors.js';
import { addEvent, listEvents } from './events.js';
import { addEpochMetrics, listEpochMetrics } from './metrics.js';
import { countRunsByStatus, createRun, finishRun, getRun, listRuns, markRunning, newRunId } from './runs.js';

async function freshStore(t: TestContext): Promise<Store & { file: string }> {
  const dir = await tmpDir({ t });
  const file = dir.join('nested', 'bnn.db');
  const store = openStore(file);
  t.after(() => store.close());
  return Object.assign(store, { file });
}

const at = (s: string) => new Date(s);

test('store - opening migrates an empty file: tables, WAL, foreign keys, busy timeout', async (t) => {
  const store = await freshStore(t);
  assert.ok(existsSync(store.file), 'parent directory and file created');
  assert.equal(store.sqlite.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.sqlite.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(store.sqlite.pragma('busy_timeout', { simple: true }), DEFAULT_LOCK_TIMEOUT_MS);
  const tables = (store.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[])
    .map((r) => r.name)
    .filter((n) => !n.startsWith('sqlite_'));
  assert.deepEqual(tables, [
    '__drizzle_migrations',
    'checkpoints',
    'energy_samples',
    'epoch_metrics',
    'events',
    'hardware_snapshots',
    'meta',
    'run_members',
    'runs',
    'step_metrics',
    'workers',
  ]);
  store.close();
  store.close();
  assert.equal(store.sqlite.open, false, 'close releases the connection');

  // Reopening applies nothing twice; read-only opens see the same schema.
  const again = openStore(store.file);
  const count = again.sqlite.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number };
  assert.equal(count.n, currentSchemaVersion());
  again.close();
  const ro = openStore(store.file, { readonly: true });
  assert.deepEqual(listRuns(ro.db), []);
  ro.close();
});

test('store - a run goes PENDING → RUNNING → COMPLETED with its results and events', async (t) => {
  const { db } = await freshStore(t);
  const config = { ...defaultRunConfig(), name: 'fmnist', tags: ['paper', 'table2'], seed: 3 };
  const run = createRun(db, { config, configPath: 'exp.yaml', codeVersion: '0.1.0+gabc', now: at('2025-01-31T12:34:56.789Z') });
  assert.match(run.id, /^r-20250131-123456-[0-9a-f]{4}$/);
  assert.equal(run.status, 'PENDING');
  assert.deepEqual(run.tags, ['paper', 'table2']);
  assert.deepEqual(run.config, config);
  assert.equal(run.configHash, configHash(config));
  assert.equal(run.precision, 'binary');
  assert.equal(run.model, 'mlp');
  assert.equal(run.dataset, 'fashion-mnist');
  assert.equal(run.createdAt, '2025-01-31T12:34:56.789Z');

  const running = markRunning(db, run.id, { backend: 'native', threads: 2, now: at('2025-01-31T12:35:00.000Z') });
  assert.equal(running.status, 'RUNNING');
  assert.equal(running.backend, 'native');
  assert.equal(running.startedAt, '2025-01-31T12:35:00.000Z');

  const done = finishRun(db, run.id, 'COMPLETED', {
    finalTestAcc: 0.871,
    bestTestAcc: 0.875,
    modelSizeBytes: 4 * 1000,
    packedSizeBytes: 200,
    wallTimeS: 12.5,
    samplesPerS: 6120,
  });
  assert.equal(done.status, 'COMPLETED');
  assert.equal(done.finalTestAcc, 0.871);
  assert.equal(done.packedSizeBytes, 200);
  assert.ok(done.finishedAt);
  assert.deepEqual(
    listEvents(db, run.id).map((e) => e.kind),
    ['created', 'started', 'completed'],
  );
  assert.deepEqual(listEvents(db, run.id)[0]!.detail, { configPath: 'exp.yaml' });

  assert.throws(() => finishRun(db, run.id, 'FAILED'), RunStateError);
  assert.throws(() => markRunning(db, run.id, { backend: 'cpu', threads: 1 }), /is COMPLETED; it cannot become RUNNING/);
});

test('store - a failed run can be resumed, recorded as such', async (t) => {
  const { db } = await freshStore(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  markRunning(db, run.id, { backend: 'cpu', threads: 1 });
  const failed = finishRun(db, run.id, 'FAILED', { error: 'out of memory' });
  assert.equal(failed.error, 'out of memory');
  const resumed = markRunning(db, run.id, { backend: 'cpu', threads: 1 });
  assert.equal(resumed.error, null);
  assert.equal(resumed.finishedAt, null);
  assert.equal(resumed.startedAt, failed.startedAt, 'the original start time stays');
  assert.deepEqual(
    listEvents(db, run.id).map((e) => e.kind),
    ['created', 'started', 'failed', 'resumed'],
  );
});

test('store - epoch metrics: one row per epoch, rewritten on conflict, unknown run rejected', async (t) => {
  const { db } = await freshStore(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  const m = { trainLoss: 0.5, trainAcc: 0.8, testLoss: 0.6, testAcc: 0.79, lr: 1e-3, samplesPerS: 5000, epochTimeS: 12 };
  addEpochMetrics(db, run.id, { epoch: 2, ...m });
  addEpochMetrics(db, run.id, { epoch: 1, ...m, testLoss: null, testAcc: null });
  addEpochMetrics(db, run.id, { epoch: 2, ...m, trainLoss: 0.4 });
  const rows = listEpochMetrics(db, run.id);
  assert.deepEqual(
    rows.map((r) => [r.epoch, r.trainLoss, r.testAcc]),
    [
      [1, 0.5, null],
      [2, 0.4, 0.79],
    ],
  );
  assert.throws(() => addEpochMetrics(db, 'r-nope', { epoch: 1, ...m }), RunNotFoundError);
  assert.throws(() => addEvent(db, { runId: 'r-nope', kind: 'x' }), RunNotFoundError);
  assert.equal(addEvent(db, { kind: 'joined', detail: { worker: 1 } }).runId, null);
});

test('store - checkpoints: latest is the one with most steps', async (t) => {
  const { db } = await freshStore(t);
  const run = createRun(db, { config: defaultRunConfig(), codeVersion: 'x' });
  assert.equal(latestCheckpoint(db, run.id), undefined);
  const base = { runId: run.id, sha256: 'a'.repeat(64), bytes: 10 };
  addCheckpoint(db, { ...base, epoch: 1, step: 100, path: 'e1' });
  addCheckpoint(db, { ...base, epoch: 2, step: 200, path: 'e2' });
  addCheckpoint(db, { ...base, epoch: 1, step: 150, path: 's150' });
  assert.equal(latestCheckpoint(db, run.id)?.path, 'e2');
  assert.throws(() => addCheckpoint(db, { ...base, runId: 'r-x', epoch: 1, step: 1, path: 'p' }), RunNotFoundError);
});

test('store - getRun by id or unique prefix; unknown and ambiguous ids are errors naming the id', async (t) => {
  const { db } = await freshStore(t);
  const config = defaultRunConfig();
  const a = createRun(db, { config, codeVersion: 'x', now: at('2025-02-01T10:00:00Z') });
  const b = createRun(db, { config, codeVersion: 'x', now: at('2025-02-01T11:00:00Z') });
  assert.equal(getRun(db, a.id).id, a.id);
  assert.equal(getRun(db, 'r-20250201-10').id, a.id);
  assert.equal(getRun(db, b.id.slice(0, 14)).id, b.id);
  assert.throws(
    () => getRun(db, 'r-2024'),
    (err: unknown) => {
      assert.ok(err instanceof RunNotFoundError);
      assert.match(err.message, /no run with id or id prefix "r-2024"/);
      return true;
    },
  );
  assert.throws(
    () => getRun(db, 'r-20250201'),
    (err: unknown) => {
      assert.ok(err instanceof RunNotFoundError);
      assert.ok(err.message.includes(a.id) && err.message.includes(b.id), err.message);
      return true;
    },
  );
  // LIKE wildcards in a prefix are plain characters.
  assert.throws(() => getRun(db, 'r-%'), RunNotFoundError);
  assert.throws(() => getRun(db, ''), RunNotFoundError);
});

test('store - listRuns filters and orders newest first', async (t) => {
  const { db } = await freshStore(t);
  const base = defaultRunConfig();
  const r1 = createRun(db, { config: { ...base, tags: ['a'] }, codeVersion: 'x', now: at('2025-03-01T00:00:00Z') });
  const r2 = createRun(db, {
    config: { ...base, seed: 2, model: { ...base.model, precision: 'fp32' } },
    codeVersion: 'x',
    now: at('2025-03-02T00:00:00Z'),
  });
  markRunning(db, r2.id, { backend: 'cpu', threads: 1 });
  assert.deepEqual(
    listRuns(db).map((r) => r.id),
    [r2.id, r1.id],
  );
  assert.deepEqual(
    listRuns(db, { precision: 'fp32' }).map((r) => r.id),
    [r2.id],
  );
  assert.deepEqual(
    listRuns(db, { status: ['PENDING'] }).map((r) => r.id),
    [r1.id],
  );
  assert.deepEqual(
    listRuns(db, { tag: 'a' }).map((r) => r.id),
    [r1.id],
  );
  assert.deepEqual(
    listRuns(db, { limit: 1 }).map((r) => r.id),
    [r2.id],
  );
  assert.match(newRunId(at('2025-12-31T23:59:59Z')), /^r-20251231-235959-[0-9a-f]{4}$/);
});

test('store - countRunsByStatus counts every status, 0 where no run has it', async (t) => {
  const { db } = await freshStore(t);
  const base = defaultRunConfig();
  assert.deepEqual(countRunsByStatus(db), { PENDING: 0, RUNNING: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 });
  createRun(db, { config: base, codeVersion: 'x' });
  createRun(db, { config: { ...base, seed: 2 }, codeVersion: 'x' });
  markRunning(db, createRun(db, { config: { ...base, seed: 3 }, codeVersion: 'x' }).id, { backend: 'cpu', threads: 1 });
  assert.deepEqual(countRunsByStatus(db), { PENDING: 2, RUNNING: 1, COMPLETED: 0, FAILED: 0, CANCELLED: 0 });
});

test('store - a file that is not SQLite is a StoreError naming it, and is left alone', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('notes.db');
  const text = 'these are my notes, not a database '.repeat(40);
  await writeFile(file, text);
  assert.throws(
    () => openStore(file),
    (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.file, file);
      assert.match(err.message, /notes\.db: not an SQLite database, or corrupt/);
      return true;
    },
  );
  assert.throws(() => openStore(dir.join('none.db'), { readonly: true }), /none\.db: no experiment database here/);
  assert.equal(existsSync(dir.join('none.db')), false);
});

test('store - a database from a newer schema is refused; a stale one cannot open read-only', async (t) => {
  const dir = await tmpDir({ t });
  const newer = dir.join('newer.db');
  openStore(newer).close();
  const raw = new Database(newer);
  raw.prepare('INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)').run('future', 8_000_000_000_000);
  raw.close();
  assert.throws(
    () => openStore(newer),
    /newer\.db: was written by a newer bnn-cluster \(schema \d+, this build knows \d+\); upgrade bnn-cluster/,
  );

  const empty = dir.join('empty.db');
  new Database(empty).close();
  assert.throws(
    () => openStore(empty, { readonly: true }),
    new RegExp(`empty\\.db: its schema is ${currentSchemaVersion()} migration\\(s\\) behind`),
  );
});
