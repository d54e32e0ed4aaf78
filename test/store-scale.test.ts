import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import type Database from 'better-sqlite3';
import { generateRuns } from '../src/bench/store-data.js';
import { compareRuns, parseCompareQuery } from '../src/query/compare.js';
import { defaultRunsQuery, queryRuns } from '../src/query/runs.js';
import { currentSchemaVersion, energyPerSample, openStore } from '../src/store/index.js';
import { insertLegacyEnergy, insertLegacyEpoch, insertLegacyRun, legacyStore } from './store-legacy.js';
import { bnn } from './helpers/in-process-cli.js';
import { tmpDir } from './helpers/tmp.js';

const SCALE_INDEXES = [
  'runs_created_at_id_idx',
  'runs_status_compare_idx',
  'epoch_metrics_run_samples_idx',
  'energy_samples_run_source_idx',
];

const indexNames = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).map((r) => r.name);

test('store scale - bench-store generates a store, times runs and compare on it through the scale indexes, and removes it', async () => {
  const r = await bnn('bench-store', '--runs', '240', '--epochs', '6', '--repeats', '2', '--json');
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as {
    generated: { runs: number; completed: number; epochRows: number; energyRows: number };
    dbPath: string | null;
    queries: { command: string; reference?: boolean; runsMs: number[]; medianMs: number; rows: number; plan: string[] }[];
    targetMs: number;
    withinTarget: boolean;
  };
  assert.equal(result.generated.runs, 240);
  assert.ok(result.generated.completed > 180 && result.generated.completed < 240, `${result.generated.completed} COMPLETED`);
  assert.equal(result.generated.energyRows, result.generated.epochRows);
  assert.deepEqual(
    result.queries.map((q) => q.command),
    [
      'bnn runs --limit 50',
      'bnn compare --by precision --metric test_acc',
      'bnn compare --by precision --metric test_acc --no-energy',
      'J/sample summed from the rows (schema-3 compare, reference)',
    ],
  );
  assert.deepEqual(
    result.queries.map((q) => q.reference === true),
    [false, false, false, true],
  );
  // The reference finds a J/sample for every COMPLETED run, as compare does from the totals.
  assert.deepEqual(
    result.queries.map((q) => q.rows),
    [50, 6, 6, result.generated.completed],
  );
  for (const q of result.queries) assert.equal(q.runsMs.length, 2);
  // Newest-first without a sort step, and COMPLETED runs in creation order straight from an index.
  assert.deepEqual(result.queries[0]!.plan, ['SCAN runs USING INDEX runs_created_at_id_idx']);
  // compare reads the covering index alone: no run row (config JSON) is read.
  assert.match(result.queries[1]!.plan.join('\n'), /SEARCH runs USING COVERING INDEX runs_status_compare_idx \(status=\?\)/);
  assert.doesNotMatch(result.queries[1]!.plan.join('\n'), /TEMP B-TREE/);
  assert.equal(result.targetMs, 1000);
  assert.equal(result.dbPath, null);
  assert.match(r.stderr, /generating 240 runs × 6 epochs in (\S+)/);
  const generatedIn = /generating 240 runs × 6 epochs in (\S+)/.exec(r.stderr)![1]!;
  assert.equal(existsSync(generatedIn), false, 'temporary database removed');

  const text = await bnn('bench-store', '--runs', '60', '--epochs', '3', '--repeats', '1');
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^bnn bench-store: 60 runs \(\d+ COMPLETED\), \d+ epoch rows, \d+ energy rows, [\d.]+ MiB, generated in [\d.]+ s/m,
  );
  assert.match(
    text.stdout,
    /^bnn runs --limit 50: median [\d.]+ ms \(CPU [\d.]+ ms\), max [\d.]+ ms over 1 \(open \+ query \+ close\); 50 rows$/m,
  );
  assert.match(text.stdout, /, generated in [\d.]+ s \(run totals filled in [\d.]+ s: the schema-4 backfill\)$/m);
  assert.match(text.stdout, /^target: each command under 1000 ms: (met|NOT met)$/m);

  const bad = await bnn('bench-store', '--runs', '0');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--runs: '0' is not valid; expected an integer >= 1/);
});

test('store scale - generated runs: compare’s J/sample equals the store’s energyPerSample per run, averaged by group', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('gen.db'));
  t.after(() => store.close());
  const counts = generateRuns(store, { runs: 60, epochs: 4, energyEpochs: 4 });
  assert.equal(counts.runs, 60);
  const result = compareRuns(store.db, parseCompareQuery({ by: 'precision', metric: 'test_acc' }));
  assert.equal(result.groups.length, 6);
  for (const g of result.groups) {
    const perRun = g.runIds.map((id) => energyPerSample(store.db, id)!.joulesPerSample);
    const expected = perRun.reduce((a, b) => a + b, 0) / perRun.length;
    assert.ok(Math.abs(g.joulesPerSample! - expected) <= 1e-12 * expected, `${g.key}: ${g.joulesPerSample} vs ${expected}`);
    assert.equal(g.energyRuns, g.runIds.length);
    assert.ok(g.energySource === 'rapl+estimate' || g.energySource === 'rapl' || g.energySource === 'estimate', g.energySource ?? 'null');
    assert.equal(g.energyEstimated, g.energySource!.includes('estimate'));
  }
  assert.deepEqual(
    compareRuns(store.db, { ...parseCompareQuery({}), energy: false }).groups.map((g) => g.joulesPerSample),
    [null, null, null, null, null, null],
  );
  assert.equal(queryRuns(store.db, defaultRunsQuery()).length, 50);
});

test('store scale - a schema-2 store upgrades to the current schema: the scale indexes exist, runs, metrics and energy are kept', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('v2.db');
  const raw = legacyStore(dir.path, file, 2);
  for (const name of SCALE_INDEXES) assert.ok(!indexNames(raw).includes(name), `${name} not in schema 2`);
  assert.ok(indexNames(raw).includes('runs_created_at_idx'));
  assert.ok(!indexNames(raw).includes('runs_status_created_at_idx'), 'a schema-3 index');
  const id = 'r-20250101-000000-0002';
  insertLegacyRun(raw, {
    id,
    name: 'from-v2',
    precision: 'binary',
    status: 'COMPLETED',
    createdAt: '2025-01-01T00:00:00.000Z',
    finalTestAcc: 0.85,
    samplesPerS: 1000,
  });
  insertLegacyEpoch(raw, id, 1, 1000, 6);
  insertLegacyEnergy(raw, id, 1, 600, 'rapl');
  raw.close();

  // the newest schema is whatever this build writes (at least 5: the scale indexes came in 3 and 4)
  const current = currentSchemaVersion();
  assert.ok(current >= 5);
  assert.throws(
    () => openStore(file, { readonly: true }),
    new RegExp(`its schema is ${current - 2} migration\\(s\\) behind \\(schema 2, this build writes ${current}\\)`),
  );
  const store = openStore(file);
  t.after(() => store.close());
  assert.equal(
    (store.sqlite.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value,
    String(current),
  );
  for (const name of SCALE_INDEXES) assert.ok(indexNames(store.sqlite).includes(name), name);
  assert.ok(
    !indexNames(store.sqlite).includes('runs_created_at_idx'),
    'schema 4 drops runs_created_at_idx (runs_created_at_id_idx covers it)',
  );
  assert.ok(!indexNames(store.sqlite).includes('runs_status_created_at_idx'), 'schema 4 replaces it with runs_status_compare_idx');
  const result = compareRuns(store.db, parseCompareQuery({}));
  assert.deepEqual(
    result.groups.map((g) => [g.key, g.n, g.runIds]),
    [['binary', 1, [id]]],
  );
  assert.equal(result.groups[0]!.joulesPerSample, 0.1);
  assert.equal(result.groups[0]!.energySource, 'rapl');
});
