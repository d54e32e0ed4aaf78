import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type Database from 'better-sqlite3';
import { defaultRunConfig } from '../src/config/schema.js';
import { compareRuns, parseCompareQuery } from '../src/query/compare.js';
import { joulesPerSampleOf } from '../src/query/energy.js';
import { defaultRunsQuery, parseRunsQuery, runsStatement } from '../src/query/runs.js';
import {
  addEnergySamples,
  addEpochMetrics,
  BACKFILL_RUN_TOTALS_SQL,
  createRun,
  energyByRun,
  finishRun,
  getRun,
  markRunning,
  migrationsFolder,
  openStore,
  refreshRunTotals,
  RunNotFoundError,
  type StoreDb,
} from '../src/store/index.js';
import { insertLegacyEnergy, insertLegacyEpoch, insertLegacyRun, legacyStore } from './store-legacy.js';
import { tmpDir } from './helpers/tmp.js';

const epoch = (n: number, samplesPerS: number, epochTimeS: number) => ({
  epoch: n,
  trainLoss: 0.5,
  trainAcc: 0.8,
  testLoss: 0.4,
  testAcc: 0.85,
  lr: 1e-3,
  samplesPerS,
  epochTimeS,
});

const totals = (db: StoreDb, id: string) => {
  const r = getRun(db, id);
  return [r.energyJoules, r.energySources, r.trainedSamples];
};

test('store totals - the writers keep each run’s energy joules, sources and trained samples in the write transaction', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  t.after(() => store.close());
  const { db } = store;
  const make = (precision: 'fp32' | 'binary') => {
    const config = { ...defaultRunConfig(), name: `totals-${precision}` };
    config.model = { ...config.model, precision };
    const run = createRun(db, { config, codeVersion: 'x' });
    markRunning(db, run.id, { backend: 'cpu', threads: 1 });
    return run.id;
  };
  const a = make('binary');
  const b = make('fp32');
  assert.deepEqual(totals(db, a), [null, null, null], 'no rows yet: no totals');

  addEpochMetrics(db, a, epoch(1, 1000, 6)); // 6,000 samples
  addEpochMetrics(db, a, epoch(2, 2000, 3)); // 6,000 samples
  assert.equal(getRun(db, a).trainedSamples, 12_000);
  // A resumed run writes an epoch again: its samples replace the old ones, not add to them.
  addEpochMetrics(db, a, epoch(2, 2000, 4)); // 8,000 samples
  assert.equal(getRun(db, a).trainedSamples, 14_000);

  // One batch over two runs refreshes both; values exact in binary so the sums are too.
  addEnergySamples(db, [
    { runId: a, epoch: 1, joules: 60.5, source: 'rapl' },
    { runId: a, epoch: 1, joules: 100.25, source: 'nvml' },
    { runId: b, epoch: 1, joules: 30, source: 'rapl' },
  ]);
  assert.deepEqual(totals(db, a), [160.75, 'nvml+rapl', 14_000]);
  assert.deepEqual(totals(db, b), [30, 'rapl', null]);
  addEnergySamples(db, [{ runId: a, epoch: 2, joules: 0.75, source: 'estimate' }]);
  assert.deepEqual(totals(db, a), [161.5, 'nvml+rapl+estimate', 14_000]);
  assert.equal(getRun(db, a).energyJoules, energyByRun(db, a).joules, 'the total is what summing the rows gives');

  // A failed batch writes neither rows nor totals.
  assert.throws(
    () =>
      addEnergySamples(db, [
        { runId: a, joules: 1000, source: 'rapl' },
        { runId: 'r-nope', joules: 1, source: 'rapl' },
      ]),
    RunNotFoundError,
  );
  assert.deepEqual(totals(db, a), [161.5, 'nvml+rapl+estimate', 14_000]);

  assert.deepEqual(joulesPerSampleOf(getRun(db, a)), {
    joulesPerSample: 161.5 / 14_000,
    sources: ['nvml', 'rapl', 'estimate'],
    estimated: true,
  });
  assert.equal(joulesPerSampleOf(getRun(db, b)), undefined, 'energy without epoch metrics: J/sample unknown');

  for (const [id, acc] of [
    [a, 0.89],
    [b, 0.9],
  ] as const) {
    finishRun(db, id, 'COMPLETED', {
      finalTestAcc: acc,
      bestTestAcc: acc,
      modelSizeBytes: 1000,
      packedSizeBytes: null,
      wallTimeS: 10,
      samplesPerS: 1000,
    });
  }
  const result = compareRuns(db, parseCompareQuery({}));
  const binary = result.groups.find((g) => g.key === 'binary')!;
  assert.equal(binary.joulesPerSample, 161.5 / 14_000);
  assert.deepEqual([binary.energyRuns, binary.energySource, binary.energyEstimated], [1, 'nvml+rapl+estimate', true]);
  const fp32 = result.groups.find((g) => g.key === 'fp32')!;
  assert.deepEqual([fp32.joulesPerSample, fp32.energyRuns, fp32.energySource], [null, 0, null]);
});

/** J/sample per run exactly as compare computed it before schema 4: from the rows, per source summed by SQLite, added in source order. */
function joulesPerSampleFromRows(raw: Database.Database): Map<string, number> {
  const energy = raw
    .prepare('SELECT run_id, source, sum(joules) AS j FROM energy_samples GROUP BY run_id, source ORDER BY run_id, source')
    .all() as { run_id: string; j: number }[];
  const samples = new Map(
    (
      raw.prepare('SELECT run_id, sum(round(samples_per_s * epoch_time_s)) AS n FROM epoch_metrics GROUP BY run_id').all() as {
        run_id: string;
        n: number;
      }[]
    ).map((r) => [r.run_id, r.n]),
  );
  const joules = new Map<string, number>();
  for (const r of energy) joules.set(r.run_id, (joules.get(r.run_id) ?? 0) + r.j);
  const out = new Map<string, number>();
  for (const [id, j] of joules) {
    const n = samples.get(id);
    if (n !== undefined && n > 0) out.set(id, j / n);
  }
  return out;
}

test('store totals - the schema-4 migration backfills existing runs with exactly what the rows gave and what the writers keep', async (t) => {
  const migration = readFileSync(join(migrationsFolder(), '0003_run_totals.sql'), 'utf8');
  assert.ok(migration.includes(`${BACKFILL_RUN_TOTALS_SQL};`), 'the migration backfills with the writers’ statement');
  assert.match(migration, /DROP INDEX `runs_created_at_idx`/);
  assert.match(migration, /DROP INDEX `runs_status_created_at_idx`/);

  const dir = await tmpDir({ t });
  const file = dir.join('v3.db');
  const raw = legacyStore(dir.path, file, 3);
  const sources = ['rapl', 'nvml', 'estimate'] as const;
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const id = `r-20250101-0000${String(i).padStart(2, '0')}-abcd`;
    ids.push(id);
    insertLegacyRun(raw, {
      id,
      name: `v3-${i}`,
      precision: i % 2 === 0 ? 'binary' : 'fp32',
      status: 'COMPLETED',
      createdAt: `2025-01-01T00:00:${String(i).padStart(2, '0')}.000Z`,
      finalTestAcc: 0.8 + i / 100,
      samplesPerS: 1000,
    });
    if (i === 11) continue; // no rows at all
    for (let e = 1; e <= 5; e++) {
      if (i !== 10) insertLegacyEpoch(raw, id, e, 1000 + 37.3 * i + e / 7, 6 + e / 3); // run 10: energy but no epochs
      // Joules that are not exact in binary, from 1, 2 or 3 sources.
      for (const source of sources.slice(0, 1 + (i % 3)))
        insertLegacyEnergy(raw, id, e, 0.1 * (i + 1) + e / 3 + source.length / 10, source);
    }
  }
  const before = joulesPerSampleFromRows(raw);
  assert.equal(before.size, 10);
  raw.close();

  const store = openStore(file);
  t.after(() => store.close());
  ids.forEach((id, i) => {
    const run = getRun(store.db, id);
    const expected = before.get(id);
    const got = joulesPerSampleOf(run)?.joulesPerSample;
    const rows = energyByRun(store.db, id);
    if (expected === undefined) assert.equal(got, undefined, id);
    // Three sources: SQLite adds the per-source sums with compensated summation (may differ in the last bit).
    else if (i % 3 === 2) assert.ok(Math.abs(got! - expected) <= 1e-15 * expected, `${id}: ${got} vs ${expected}`);
    // One or two sources: bit-identical to what compare computed from the rows before.
    else assert.equal(got, expected, id);
    if (rows.sampleRows === 0) assert.equal(run.energyJoules, null, id);
    else assert.ok(Math.abs(run.energyJoules! - rows.joules) <= 1e-15 * rows.joules, `${id}: ${run.energyJoules} vs ${rows.joules}`);
  });
  assert.deepEqual(totals(store.db, ids[11]!), [null, null, null]);
  assert.deepEqual(totals(store.db, ids[10]!).slice(1), ['nvml+rapl', null]);
  assert.equal(getRun(store.db, ids[0]!).energySources, 'rapl');
  assert.equal(getRun(store.db, ids[2]!).energySources, 'nvml+rapl+estimate');

  // The writers' refresh of a backfilled run changes nothing: both are the same statement.
  const snapshot = ids.map((id) => totals(store.db, id));
  store.db.transaction((tx) => {
    for (const id of ids) refreshRunTotals(tx, id);
  });
  assert.deepEqual(
    ids.map((id) => totals(store.db, id)),
    snapshot,
  );

  // runs_created_at_idx is gone; the (created_at, id) index serves created-at filters and sorts.
  const plan = (query: ReturnType<typeof parseRunsQuery>) => {
    const { sql, params } = runsStatement(store.db, query).toSQL();
    return (store.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
  };
  assert.match(plan(defaultRunsQuery()), /runs_created_at_id_idx/);
  assert.match(plan(parseRunsQuery({ since: '2025-01-01', sort: 'created', asc: true })), /runs_created_at_id_idx/);
});
