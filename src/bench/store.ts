import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareRuns, parseCompareQuery } from '../query/compare.js';
import { withQueryStore } from '../query/open.js';
import { defaultRunsQuery, queryRuns, runsStatement } from '../query/runs.js';
import { compareStatement, energyRowsStatement, joulesPerSampleFromRows } from '../store/compare.js';
import { openStore, type StoreDb } from '../store/db.js';
import { generateRuns, type GeneratedCounts, type StoreScaleOptions } from './store-data.js';

export interface StoreBenchOptions extends StoreScaleOptions {
  /** Timed repetitions of each query (each opens the file afresh, as a command does). */
  repeats: number;
  /** Also time each query as a `bnn` child process (Node start included); needs the CLI entry. */
  cliEntry?: { execPath: string; args: string[] };
  /** Keep the generated database instead of deleting it (its path is in the result). */
  keep: boolean;
  /** Time this existing store (one `--keep` left) instead of generating one; it is not deleted. */
  existing?: string;
  /** Progress lines for people. */
  progress?: (line: string) => void;
}

export interface QueryTiming {
  /** What was timed, as a command line. */
  command: string;
  /** A side-by-side reference (not a command; not judged against the target). */
  reference?: boolean;
  /** Each repetition: open read-only, query, close (milliseconds). */
  runsMs: number[];
  medianMs: number;
  /**
   * CPU time (user + system) of each repetition. On a busy machine wall time includes waiting
   * for a core; the query is single-threaded and reads cached pages, so CPU time is what it
   * would take on an idle one.
   */
  cpuMs: number[];
  medianCpuMs: number;
  maxMs: number;
  /** Rows (runs or groups; runs with a J/sample for the reference) the query returned. */
  rows: number;
  /** SQLite's plan for the main statement. */
  plan: string[];
  /** Wall time of one `bnn` child process doing the same, when measured. */
  cliMs?: number;
}

export interface StoreBenchResult {
  options: { runs: number; epochs: number; energyEpochs: number; repeats: number };
  generated: GeneratedCounts;
  generateS: number;
  dbBytes: number;
  dbPath: string | null;
  queries: QueryTiming[];
}

/**
 * Generates a research-scale experiment database in a temp folder and times the query
 * commands' work on it: `bnn runs --limit 50` and `bnn compare --by precision --metric test_acc`.
 */
export function benchStore(options: StoreBenchOptions): StoreBenchResult {
  const log = options.progress ?? (() => undefined);
  const dir = options.existing === undefined ? mkdtempSync(join(tmpdir(), 'bnn-bench-store-')) : null;
  const file = options.existing ?? join(dir!, 'bnn.db');
  try {
    let generated: GeneratedCounts;
    let generateS = 0;
    if (options.existing === undefined) {
      log(`generating ${options.runs.toLocaleString('en-US')} runs × ${options.epochs} epochs in ${file}`);
      const t0 = performance.now();
      const store = openStore(file);
      try {
        generated = generateRuns(store, options, (n) => {
          if (n % 5000 === 0) log(`  ${n.toLocaleString('en-US')} / ${options.runs.toLocaleString('en-US')} runs`);
        });
        store.sqlite.pragma('wal_checkpoint(TRUNCATE)');
        store.sqlite.exec('ANALYZE');
      } finally {
        store.close();
      }
      generateS = (performance.now() - t0) / 1000;
      log(
        `  done in ${generateS.toFixed(1)} s (${generated.epochRows.toLocaleString('en-US')} epoch rows, ${generated.energyRows.toLocaleString('en-US')} energy rows)`,
      );
    } else {
      generated = withQueryStore(file, {}, ({ sqlite }) => countRows(sqlite));
      log(`timing ${file}: ${generated.runs.toLocaleString('en-US')} runs`);
    }

    const runsQuery = { ...defaultRunsQuery(), limit: 50 };
    const { cliEntry: _cli, ...withoutCli } = options;
    const compareQuery = parseCompareQuery({ by: 'precision', metric: 'test_acc' });
    const queries = [
      timeQuery(
        file,
        options,
        'bnn runs --limit 50',
        ['runs', '--limit', '50'],
        (db) => queryRuns(db, runsQuery).length,
        (db) => runsStatement(db, runsQuery).toSQL(),
      ),
      timeQuery(
        file,
        options,
        'bnn compare --by precision --metric test_acc',
        ['compare', '--by', 'precision', '--metric', 'test_acc'],
        (db) => compareRuns(db, compareQuery).groups.length,
        (db) => compareStatement(db, compareQuery.filter).toSQL(),
      ),
      timeQuery(
        file,
        options,
        'bnn compare --by precision --metric test_acc --no-energy',
        ['compare', '--by', 'precision', '--metric', 'test_acc', '--no-energy'],
        (db) => compareRuns(db, { ...compareQuery, energy: false }).groups.length,
        (db) => compareStatement(db, compareQuery.filter).toSQL(),
      ),
      // Reference, side by side: J/sample as schema 3's compare computed it, summing every energy
      // and epoch row of the runs compared (what the per-run totals replaced).
      timeQuery(
        file,
        withoutCli,
        'J/sample summed from the rows (schema-3 compare, reference)',
        [],
        (db) => joulesPerSampleFromRows(db, compareQuery.filter),
        (db) => energyRowsStatement(db, compareQuery.filter).toSQL(),
        true,
      ),
    ];
    for (const q of queries)
      log(
        `${q.command}: median ${q.medianMs.toFixed(1)} ms (CPU ${q.medianCpuMs.toFixed(1)} ms), max ${q.maxMs.toFixed(1)} ms over ${q.runsMs.length}${q.cliMs === undefined ? '' : `; as a bnn process ${q.cliMs.toFixed(0)} ms`}`,
      );
    return {
      options: { runs: options.runs, epochs: options.epochs, energyEpochs: options.energyEpochs, repeats: options.repeats },
      generated,
      generateS,
      dbBytes: statSync(file).size,
      dbPath: options.keep || options.existing !== undefined ? file : null,
      queries,
    };
  } finally {
    if (!options.keep && dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

function timeQuery(
  file: string,
  options: StoreBenchOptions,
  command: string,
  cliArgs: string[],
  run: (db: StoreDb) => number,
  statement: (db: StoreDb) => { sql: string; params: unknown[] },
  reference = false,
): QueryTiming {
  const runsMs: number[] = [];
  const cpuMs: number[] = [];
  let rows = 0;
  for (let i = 0; i < options.repeats; i++) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    rows = withQueryStore(file, {}, ({ db }) => run(db));
    runsMs.push(performance.now() - t);
    const used = process.cpuUsage(cpu);
    cpuMs.push((used.user + used.system) / 1000);
  }
  const plan = withQueryStore(file, {}, ({ db, sqlite }) => {
    const { sql, params } = statement(db);
    return (sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  });
  const sorted = [...runsMs].sort((a, b) => a - b);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const timing: QueryTiming = {
    command,
    ...(reference ? { reference } : {}),
    runsMs,
    medianMs: median(runsMs),
    maxMs: sorted.at(-1)!,
    cpuMs,
    medianCpuMs: median(cpuMs),
    rows,
    plan,
  };
  if (options.cliEntry !== undefined) {
    const t = performance.now();
    const r = spawnSync(options.cliEntry.execPath, [...options.cliEntry.args, ...cliArgs, '--store', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${command} exited ${r.status}: ${r.stderr}`);
    timing.cliMs = ms;
  }
  return timing;
}

function countRows(sqlite: { prepare(sql: string): { get(): unknown } }): GeneratedCounts {
  const n = (sql: string) => (sqlite.prepare(sql).get() as { n: number }).n;
  return {
    runs: n('SELECT count(*) AS n FROM runs'),
    completed: n("SELECT count(*) AS n FROM runs WHERE status = 'COMPLETED'"),
    epochRows: n('SELECT count(*) AS n FROM epoch_metrics'),
    energyRows: n('SELECT count(*) AS n FROM energy_samples'),
    eventRows: n('SELECT count(*) AS n FROM events'),
    totalsMs: 0,
  };
}
