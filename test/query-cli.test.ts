import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { buildFixtureStore, type Fixture } from '../src/query/test-fixture.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { bnnResult } from './helpers/in-process-cli.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';

let dir: TmpDir;
let file: string;
let fixture: Fixture;

before(async () => {
  dir = await tmpDir({ prefix: 'bnn-query-cli-' });
  file = dir.join('runs', 'bnn.db');
  fixture = buildFixtureStore(file);
});
after(() => dir.cleanup());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** `bnn <args> --store <fixture>` as a real child process. */
const bnn = (...args: string[]) => runCli([...args, '--store', file]);

/**
 * The same through the CLI entry's in-process runner (same parsing, handlers and
 * handleError; only process.exit is left out): the suite must stay fast on two cores,
 * so child processes are kept for one check of each command and the store errors.
 */
const bnnIn = (...args: string[]) => runInProcessAt(args, file);

const runInProcessAt = (args: readonly string[], store: string): Promise<CliResult> => bnnResult([...args, '--store', store]);

function ok(r: CliResult): CliResult {
  assert.equal(r.timedOut, false, 'child finished in time');
  assert.equal(r.code, 0, r.stderr);
  return r;
}

test('cli runs - table, JSON and CSV with filters, sort and limit; the default store is ./runs/bnn.db', async () => {
  const [table, json, csv, fromCwd] = await Promise.all([
    bnn('runs', '--status', 'completed', '--precision', 'binary'),
    bnnIn('runs', '--sort', 'final_test_acc', '--desc', '--limit', '2', '--json'),
    bnnIn('runs', '--name', 'crash', '--csv'),
    runCli(['runs', '--tag', 'wip', '--json'], { cwd: dir.path }),
  ]);
  const lines = ok(table).stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID\s+NAME\s+STATUS\s+MODEL\s+PRECISION\s+DATASET\s+TEST ACC\s+BEST\s+SAMPLES\/S\s+WALL\s+CREATED \(UTC\)$/);
  assert.equal(lines.length, 1 + 5);
  assert.ok(
    lines.slice(1).every((l) => /\bCOMPLETED\s+mlp\s+binary\b/.test(l)),
    table.stdout,
  );
  assert.match(table.stdout, /89\.40%/, 'accuracy shown as a percentage');
  assert.equal(
    new Set(lines.map((l) => (l.indexOf('STATUS') >= 0 ? l.indexOf('STATUS') : l.search(/COMPLETED/)))).size,
    1,
    'columns aligned',
  );

  const rows = JSON.parse(ok(json).stdout) as { id: string; finalTestAcc: number }[];
  assert.deepEqual(
    rows.map((r) => r.finalTestAcc),
    [0.908, 0.907],
  );

  const csvLines = ok(csv).stdout.trimEnd().split('\n');
  assert.equal(csvLines.length, 2);
  assert.match(csvLines[0]!, /^id,name,status,model,precision,dataset,/);
  assert.ok(csvLines[1]!.startsWith(`${fixture.failed.id},mnist-crash,FAILED,`));

  assert.deepEqual(
    (JSON.parse(ok(fromCwd).stdout) as { id: string }[]).map((r) => r.id),
    [fixture.running.id],
  );
});

test('cli runs - bad flag values are bad usage (2) naming each flag, its value and what is valid; so is --json with --csv', async () => {
  const [status, since, sort, limit, several, both] = await Promise.all([
    bnn('runs', '--status', 'done'),
    bnnIn('runs', '--since', 'last-week'),
    bnnIn('runs', '--sort', 'acc', '--json'),
    bnn('runs', '--limit', 'abc'),
    bnnIn('runs', '--limit', '0', '--model', 'vgg', '--lock-timeout-ms', 'soon'),
    bnnIn('runs', '--json', '--csv'),
  ]);
  assert.equal(status.code, 2);
  assert.equal(status.stdout, '');
  assert.equal(
    status.stderr,
    "bnn: error: --status: 'done' is not valid; expected one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ABANDONED\n",
  );
  assert.equal(since.code, 2);
  assert.match(since.stderr, /^bnn: error: --since: 'last-week' is not valid; expected an ISO-8601 date/);
  assert.equal(sort.code, 2);
  const err = (
    JSON.parse(sort.stdout) as { error: { type: string; exitCode: number; issues: { flag: string; value: string; expected: string }[] } }
  ).error;
  assert.equal(err.type, 'FlagError');
  assert.equal(err.exitCode, 2);
  assert.deepEqual(err.issues, [
    { flag: '--sort', value: 'acc', expected: 'one of created, finished, final_test_acc, samples_per_s, wall_time_s, name' },
  ]);
  assert.equal(limit.code, 2);
  assert.equal(limit.stdout, '');
  assert.equal(limit.stderr, "bnn: error: --limit: 'abc' is not valid; expected an integer >= 1\n");
  assert.equal(several.code, 2);
  assert.deepEqual(several.stderr.trimEnd().split('\n'), [
    "bnn: error: --model: 'vgg' is not valid; expected one of mlp, vgg-small, resnet18",
    "bnn: error: --limit: '0' is not valid; expected an integer >= 1",
    "bnn: error: --lock-timeout-ms: 'soon' is not valid; expected an integer >= 0",
  ]);
  assert.equal(both.code, 2);
  assert.equal((JSON.parse(both.stdout) as { error: { message: string } }).error.message, '--json and --csv: choose one output format');
});

test('cli show - run fields, config, epochs with a test-accuracy sparkline, checkpoints, events; unknown id exits 1', async () => {
  const [show, json, missing] = await Promise.all([
    bnn('show', fixture.detailed.id),
    bnnIn('show', fixture.detailed.id.slice(0, 18), '--json'),
    bnnIn('show', 'r-20990101'),
  ]);
  const out = ok(show).stdout;
  assert.match(out, new RegExp(`^id:\\s+${fixture.detailed.id}$`, 'm'));
  assert.match(out, /^final test acc:\s+89\.10%$/m);
  assert.match(out, /^config:\n {2}name: fmnist-binary\n/m);
  // Epoch test accuracies 0.80, 0.85, (none), 0.88, 0.891 scaled onto ▁..█.
  assert.match(out, /^epochs \(5\):\s+test acc ▁▅ ▇█\s+80\.00% → 89\.10%$/m);
  assert.match(out, /^\s+EPOCH\s+TRAIN LOSS\s+TRAIN ACC\s+TEST LOSS\s+TEST ACC\s+LR\s+SAMPLES\/S\s+TIME$/m);
  assert.match(out, /^\s+5\s+0\.2000\s+90\.00%\s+0\.3000\s+89\.10%/m);
  assert.match(out, /^\s+3\s+0\.3333\s+80\.00%\s+-\s+-/m, 'an epoch without evaluation shows dashes');
  assert.match(out, /^\s+5\s+500\s+abababababab\s+128\.0 KiB\s+runs\/ckpt\/epoch-5\.safetensors$/m);
  assert.match(out, /^\s+2025-01-20T00:00:00\.000Z\s+checkpointed\s+\{"epoch":5\}$/m);

  const detail = JSON.parse(ok(json).stdout) as { run: { id: string }; epochs: unknown[]; checkpoints: unknown[]; events: unknown[] };
  assert.equal(detail.run.id, fixture.detailed.id);
  assert.equal(detail.epochs.length, 5);

  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'bnn: error: no run with id or id prefix "r-20990101"\n');
});

test('cli compare - the grouped table and JSON with Welch t, df, p against the baseline', async () => {
  const [table, json, badMetric] = await Promise.all([
    bnnIn('compare', '--by', 'precision', '--metric', 'test_acc'),
    bnnIn('compare', '--by', 'precision', '--metric', 'test_acc', '--baseline', 'fp32', '--json'),
    bnnIn('compare', '--metric', 'accuracy'),
  ]);
  const lines = ok(table).stdout.split('\n');
  assert.match(lines[0]!, /^PRECISION\s+N\s+test_acc MEAN ± STD\s+Δ VS BASELINE\s+t\s+df\s+p\s+SIZE\s+SAMPLES\/S\s+J\/SAMPLE$/);
  assert.match(lines[1]!, /^fp32\s+5\s+90\.58% ± 0\.19%\s+baseline\s+-\s+-\s+3\.8 MiB\s+5,020\s+-$/);
  assert.match(lines[2]!, /^binary\s+5\s+89\.14% ± 0\.21%\s+-1\.44 pp\s+-11\.384\s+7\.96\s+3\.35e-6\s+127\.0 KiB\s+7,020\s+-$/);
  assert.match(lines[3]!, /^xnor\s+1\s+85\.00% ± -\s+-5\.58 pp\s+- \(n<2\)\s+-\s+-/);

  const result = JSON.parse(ok(json).stdout) as {
    baseline: string;
    groups: { key: string; t: number | null; df: number | null; p: number | null; noTest: string | null }[];
  };
  assert.equal(result.baseline, 'fp32');
  const binary = result.groups.find((g) => g.key === 'binary')!;
  // mpmath reference values; the script is in src/query/stats.test.ts.
  assert.ok(Math.abs(binary.t! - -11.384199576606166) < 1e-6);
  assert.ok(Math.abs(binary.df! - 7.9552517091361095) < 1e-6);
  assert.ok(Math.abs(binary.p! / 3.347288724517046e-6 - 1) < 1e-6);
  assert.equal(result.groups.find((g) => g.key === 'xnor')!.noTest, 'n<2');

  assert.equal(badMetric.code, 2);
  assert.match(
    badMetric.stderr,
    /--metric: 'accuracy' is not valid; expected one of test_acc, best_test_acc, samples_per_s, wall_time_s, model_size_bytes, packed_size_bytes/,
  );
});

test('cli sql - SELECT as table, JSON and CSV; writes, pragma writes and multi-statements exit 1 with the file unchanged', async () => {
  const before = sha256(file);
  const query = "SELECT precision, count(*) AS n FROM runs WHERE status = 'COMPLETED' GROUP BY precision ORDER BY precision";
  const [table, json, csv, ...refused] = await Promise.all([
    bnn('sql', query),
    bnnIn('sql', query, '--json'),
    bnnIn('sql', query, '--csv'),
    bnn('sql', "INSERT INTO events (at, kind) VALUES ('x', 'y')"),
    bnnIn('sql', 'PRAGMA user_version=5'),
    bnnIn('sql', 'PRAGMA journal_mode=DELETE'),
    bnnIn('sql', 'SELECT 1; DROP TABLE runs'),
  ]);
  assert.equal(ok(table).stdout, 'precision  n\nbinary     5\nfp32       5\nxnor       1\n');
  assert.deepEqual(JSON.parse(ok(json).stdout), [
    { precision: 'binary', n: 5 },
    { precision: 'fp32', n: 5 },
    { precision: 'xnor', n: 1 },
  ]);
  assert.equal(ok(csv).stdout, 'precision,n\nbinary,5\nfp32,5\nxnor,1\n');
  for (const r of refused) {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
  assert.equal(refused[0]!.stderr, 'bnn: error: bnn sql is read-only: INSERT statements are refused; use a SELECT\n');
  assert.match(refused[1]!.stderr, /read-only: 'PRAGMA user_version=5' sets a pragma, so it is refused/);
  assert.match(refused[2]!.stderr, /read-only: 'PRAGMA journal_mode=DELETE' sets a pragma/);
  assert.match(refused[3]!.stderr, /exactly one statement/);
  assert.equal(sha256(file), before, 'database file byte-identical');
});

test('cli store errors - missing file exits 1 and creates nothing; corrupt or locked file exits 1 naming it', async () => {
  const missing = dir.join('none', 'bnn.db');
  const corrupt = dir.join('corrupt.db');
  writeFileSync(corrupt, 'not a database '.repeat(300));
  const holder = new Database(file, { timeout: 1000 });
  holder.pragma('locking_mode = EXCLUSIVE');
  holder.exec('BEGIN EXCLUSIVE');
  holder.exec("INSERT INTO events (at, kind) VALUES ('2025-01-01T00:00:00.000Z', 'probe')");
  let results: CliResult[];
  try {
    results = await Promise.all([
      runCli(['sql', 'SELECT 1', '--store', missing]),
      runInProcessAt(['runs'], missing),
      runInProcessAt(['compare'], corrupt),
      runCli(['runs', '--store', file, '--lock-timeout-ms', '50']),
    ]);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
  const [sqlMissing, runsMissing, corrupted, locked] = results;
  assert.equal(sqlMissing!.code, 1);
  assert.equal(
    sqlMissing!.stderr,
    `bnn: error: ${missing}: no experiment database here (pass --store <file>, or record a run with bnn train first)\n`,
  );
  assert.equal(runsMissing!.code, 1);
  assert.equal(existsSync(dir.join('none')), false, 'no directory or file created');
  assert.equal(corrupted!.code, 1);
  assert.match(
    corrupted!.stderr,
    new RegExp(`^bnn: error: ${corrupt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not an SQLite database, or corrupt`),
  );
  assert.equal(locked!.code, 1);
  assert.match(locked!.stderr, /^bnn: error: .*bnn\.db: the database is locked by another process \(waited 50 ms\)/);
  assert.doesNotMatch(locked!.stderr, /internal error|at /, 'no stack trace');
});
