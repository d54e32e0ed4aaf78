import { configHash } from '../config/hash.js';
import { ARCHS, DATASET_NAMES, defaultRunConfig, PRECISIONS } from '../config/schema.js';
import type { Store } from '../store/db.js';
import { BACKFILL_RUN_TOTALS_SQL } from '../store/totals.js';

export interface StoreScaleOptions {
  /** Runs to generate. */
  runs: number;
  /** Epoch metric rows per run. */
  epochs: number;
  /** Energy samples per run (one per epoch for the first this many epochs; 0 for none). */
  energyEpochs: number;
}

export function defaultStoreScaleOptions(): StoreScaleOptions {
  return { runs: 30_000, epochs: 100, energyEpochs: 100 };
}

export interface GeneratedCounts {
  runs: number;
  completed: number;
  epochRows: number;
  energyRows: number;
  eventRows: number;
  /**
   * Milliseconds of the statement that fills every run's totals (BACKFILL_RUN_TOTALS_SQL): what
   * the schema-4 migration's backfill costs on such a store. 0 when not generated here.
   */
  totalsMs: number;
}

/** Deterministic pseudo-random numbers (mulberry32), so every generated store is the same. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE_ACC: Record<string, number> = { fp32: 0.905, int8: 0.9, binary: 0.89, 'binary-weights': 0.895, xnor: 0.85, rsign: 0.88 };

/** The part of a prepared statement the generator uses. */
interface Statement {
  run(...params: unknown[]): unknown;
}

interface Statements {
  insertRun: Statement;
  insertEpoch: Statement;
  insertEnergy: Statement;
  insertEvent: Statement;
}

function prepareStatements(sqlite: Store['sqlite']): Statements {
  const insertRun =
    sqlite.prepare(`INSERT INTO runs (id, name, tags, config, config_hash, precision, model, dataset, seed, status, code_version, backend, threads,
      created_at, started_at, finished_at, final_test_acc, best_test_acc, model_size_bytes, packed_size_bytes, wall_time_s, samples_per_s, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertEpoch =
    sqlite.prepare(`INSERT INTO epoch_metrics (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, samples_per_s, epoch_time_s)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertEnergy = sqlite.prepare(
    `INSERT INTO energy_samples (run_id, worker_id, epoch, at, watts, joules, source, detail) VALUES (?, NULL, ?, ?, ?, ?, ?, '{}')`,
  );
  const insertEvent = sqlite.prepare(`INSERT INTO events (run_id, at, kind, detail) VALUES (?, ?, ?, '{}')`);
  return { insertRun, insertEpoch, insertEnergy, insertEvent };
}

/** One generated run: everything its rows are made of. */
interface RunSpec {
  index: number;
  id: string;
  name: string;
  tags: string[];
  config: ReturnType<typeof defaultRunConfig>;
  precision: (typeof PRECISIONS)[number];
  model: (typeof ARCHS)[number];
  dataset: (typeof DATASET_NAMES)[number];
  seed: number;
  status: string;
  samplesPerS: number;
  epochTimeS: number;
  finalAcc: number;
  /** Test accuracy of each epoch run (fewer than the options' epochs for an unfinished run). */
  accs: number[];
  /** Finished: any status but RUNNING. */
  done: boolean;
  wallS: number;
  /** ISO time `ms` after the run's creation. */
  iso: (ms: number) => string;
}

/** Run `i`, drawing from `random` in a fixed order (the order fixes every generated store). */
function runSpec(i: number, options: StoreScaleOptions, random: () => number, startMs: number, baseConfig: RunSpec['config']): RunSpec {
  const precision = PRECISIONS[i % PRECISIONS.length]!;
  const model = ARCHS[Math.floor(i / PRECISIONS.length) % ARCHS.length]!;
  const dataset = DATASET_NAMES[Math.floor(i / (PRECISIONS.length * ARCHS.length)) % 2]!;
  const seed = Math.floor(i / (PRECISIONS.length * ARCHS.length * 2)) % 10;
  const roll = random();
  const status = roll < 0.9 ? 'COMPLETED' : roll < 0.96 ? 'FAILED' : roll < 0.99 ? 'CANCELLED' : 'RUNNING';
  const created = new Date(startMs + i * 60_000);
  const iso = (ms: number) => new Date(created.getTime() + ms).toISOString();
  const id = `r-${created.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-${(i & 0xffff).toString(16).padStart(4, '0')}`;
  const name = `${dataset}-${model}-${precision}`;
  const tags = i % 7 === 0 ? ['sweep', `batch-${i % 13}`] : ['sweep'];
  const config = {
    ...baseConfig,
    name,
    tags,
    seed,
    model: { ...baseConfig.model, arch: model, precision },
    dataset: { ...baseConfig.dataset, name: dataset },
  };
  const epochs = status === 'COMPLETED' ? options.epochs : Math.floor(random() * options.epochs);
  const samplesPerS = (precision === 'fp32' ? 5000 : 7000) * (0.9 + 0.2 * random());
  const epochTimeS = 60_000 / samplesPerS;
  const finalAcc = BASE_ACC[precision]! - 0.01 * ARCHS.indexOf(model) + 0.004 * (random() - 0.5);
  const accs = Array.from({ length: epochs }, (_, k) => finalAcc - 0.2 * Math.exp(-(k + 1) / 8) + 0.002 * (random() - 0.5));
  const done = status !== 'RUNNING';
  const wallS = epochs * epochTimeS;
  return {
    index: i,
    id,
    name,
    tags,
    config,
    precision,
    model,
    dataset,
    seed,
    status,
    samplesPerS,
    epochTimeS,
    finalAcc,
    accs,
    done,
    wallS,
    iso,
  };
}

function insertRunRow(insertRun: Statement, run: RunSpec): void {
  const { id, status, done, iso } = run;
  const completed = status === 'COMPLETED';
  insertRun.run(
    id,
    run.name,
    JSON.stringify(run.tags),
    JSON.stringify(run.config),
    configHash(run.config),
    run.precision,
    run.model,
    run.dataset,
    run.seed,
    status,
    '0.1.0+gbench',
    'native',
    2,
    iso(0),
    iso(1000),
    done ? iso(1000 + run.wallS * 1000) : null,
    completed ? run.finalAcc : null,
    completed ? Math.max(...run.accs) : null,
    4_000_000,
    run.precision === 'fp32' ? null : 130_000,
    done ? run.wallS : null,
    run.accs.length > 0 ? run.samplesPerS : null,
    status === 'FAILED' ? 'out of memory' : null,
  );
}

/** Epoch metrics of every epoch run, and an energy sample for each of the first `energyEpochs`. */
function insertEpochRows(statements: Statements, run: RunSpec, options: StoreScaleOptions, counts: GeneratedCounts): void {
  const { id, samplesPerS, epochTimeS } = run;
  run.accs.forEach((acc, k) => {
    const e = k + 1;
    statements.insertEpoch.run(
      id,
      e,
      1.5 * Math.exp(-e / 10) + 0.2,
      acc + 0.02,
      1.2 * Math.exp(-e / 10) + 0.25,
      acc,
      (0.001 * (1 + Math.cos((Math.PI * e) / options.epochs))) / 2,
      samplesPerS,
      epochTimeS,
    );
    counts.epochRows++;
    if (e <= options.energyEpochs) {
      const watts = run.precision === 'fp32' ? 95 : 80;
      statements.insertEnergy.run(
        id,
        e,
        run.iso(1000 + e * epochTimeS * 1000),
        watts,
        watts * epochTimeS,
        run.index % 3 === 0 ? 'estimate' : 'rapl',
      );
      counts.energyRows++;
    }
  });
}

/** created and started, and the final status's event when the run is done. */
function insertEvents(insertEvent: Statement, run: RunSpec, counts: GeneratedCounts): void {
  insertEvent.run(run.id, run.iso(0), 'created');
  insertEvent.run(run.id, run.iso(1000), 'started');
  counts.eventRows += 2;
  if (run.done) {
    insertEvent.run(run.id, run.iso(1000 + run.wallS * 1000), run.status.toLowerCase());
    counts.eventRows++;
  }
}

/**
 * Fills an open (migrated) store with `runs` research-like runs, each with `epochs` epoch
 * metrics, energy samples and lifecycle events, in one transaction through prepared
 * statements (the ORM's per-row overhead would dominate at millions of rows), then fills
 * the runs' totals in that transaction.
 * Rows look like `bnn train`'s: full config JSON, ISO times, fractions for accuracies.
 * `progress(done)` is called every 1,000 runs.
 */
export function generateRuns(
  store: Store,
  options: StoreScaleOptions,
  progress: (runsDone: number) => void = () => undefined,
): GeneratedCounts {
  const { sqlite } = store;
  const statements = prepareStatements(sqlite);
  const random = rng(42);
  const counts: GeneratedCounts = { runs: 0, completed: 0, epochRows: 0, energyRows: 0, eventRows: 0, totalsMs: 0 };
  const start = Date.UTC(2024, 0, 1);
  const baseConfig = defaultRunConfig();

  sqlite.transaction(() => {
    for (let i = 0; i < options.runs; i++) {
      const run = runSpec(i, options, random, start, baseConfig);
      insertRunRow(statements.insertRun, run);
      insertEpochRows(statements, run, options, counts);
      insertEvents(statements.insertEvent, run, counts);
      counts.runs++;
      if (run.status === 'COMPLETED') counts.completed++;
      if ((i + 1) % 1000 === 0) progress(i + 1);
    }
    // The rows went in through raw statements, not the store's writers: fill every run's
    // totals (energy joules and sources, trained samples) as the schema-4 migration does.
    const t0 = performance.now();
    sqlite.exec(BACKFILL_RUN_TOTALS_SQL);
    counts.totalsMs = performance.now() - t0;
  })();
  return counts;
}
