import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { FlagError } from '../src/config/flags.js';
import { compareRuns, parseCompareQuery } from '../src/query/compare.js';
import { QueryFlagError, SqlError, SqlRefusedError } from '../src/query/errors.js';
import { withQueryStore } from '../src/query/open.js';
import { parseRunsQuery, queryRuns, type RunsQueryFlags } from '../src/query/runs.js';
import { runDetail } from '../src/query/show.js';
import { leadingKeyword, runSql } from '../src/query/sql.js';
import { buildFixtureStore, FIXTURE_ACCS, FIXTURE_EPOCH_ACCS, type Fixture } from '../src/query/test-fixture.js';
import { RunNotFoundError, StoreError } from '../src/store/errors.js';
import type { RunRow } from '../src/store/schema.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';

let dir: TmpDir;
let file: string;
let fixture: Fixture;

before(async () => {
  dir = await tmpDir({ prefix: 'bnn-query-' });
  file = dir.join('runs', 'bnn.db');
  fixture = buildFixtureStore(file);
});
after(() => dir.cleanup());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const select = (flags: RunsQueryFlags): RunRow[] => withQueryStore(file, {}, ({ db }) => queryRuns(db, parseRunsQuery(flags)));
const ids = (rows: readonly RunRow[]) => rows.map((r) => r.id);

test('query runs - default: every run, newest first, limit 50', () => {
  const rows = select({});
  assert.equal(rows.length, fixture.runs.length);
  assert.deepEqual(ids(rows), ids(fixture.runs).reverse());
});

test('query runs - each filter narrows to exactly the matching runs', () => {
  assert.deepEqual(ids(select({ status: 'failed' })), [fixture.failed.id]);
  assert.deepEqual(ids(select({ status: 'FAILED,running' })).sort(), [fixture.failed.id, fixture.running.id].sort());
  assert.equal(select({ precision: 'fp32' }).length, FIXTURE_ACCS.fp32.length);
  assert.equal(select({ precision: 'binary', status: 'completed' }).length, FIXTURE_ACCS.binary.length);
  assert.equal(select({ model: 'mlp' }).length, fixture.runs.length);
  assert.equal(select({ model: 'resnet18' }).length, 0);
  assert.equal(select({ dataset: 'cifar10' }).length, 0);
  assert.deepEqual(ids(select({ tag: 'wip' })), [fixture.running.id]);
  assert.equal(select({ tag: 'table2' }).length, 3, 'one run per precision carries table2');
  assert.deepEqual(ids(select({ name: 'CRASH' })), [fixture.failed.id], 'name is a case-insensitive substring');
  assert.equal(select({ name: '%' }).length, 0, 'LIKE wildcards in --name are literal');
  // Fixture: ten runs on 2025-01-10, the rest on 2025-01-11.
  assert.equal(select({ until: '2025-01-10' }).length, 10, 'a bare --until date includes that whole day');
  assert.equal(select({ since: '2025-01-11' }).length, fixture.runs.length - 10);
  assert.equal(select({ since: '2025-01-10T12:05:00Z', until: '2025-01-10T12:06:00Z' }).length, 2, 'date-times are inclusive bounds');
  assert.equal(select({ since: '2025-01-10T13:05:00+01:00', until: '2025-01-10T12:05:00Z' }).length, 1, 'offsets are converted to UTC');
});

test('query runs - sort by a column either way, missing values last, then limit', () => {
  const completed = fixture.runs.filter((r) => r.finalTestAcc !== null);
  const byAcc = [...completed].sort((a, b) => b.finalTestAcc! - a.finalTestAcc!);
  const desc = select({ sort: 'final_test_acc', desc: true });
  assert.deepEqual(ids(desc.slice(0, completed.length)), ids(byAcc));
  assert.deepEqual(
    desc.slice(completed.length).map((r) => r.finalTestAcc),
    [null, null],
    'runs without a value come last',
  );
  const asc = select({ sort: 'final_test_acc' });
  assert.equal(asc[0]!.finalTestAcc, 0.85);
  assert.equal(asc.at(-1)!.finalTestAcc, null, 'missing values last ascending too');
  assert.deepEqual(ids(select({ sort: 'final_test_acc', desc: true, limit: '3' })), ids(byAcc.slice(0, 3)));
  const names = select({ sort: 'name' }).map((r) => r.name);
  assert.deepEqual(names, [...names].sort());
  assert.equal(select({ sort: 'samples_per_s', desc: true })[0]!.samplesPerS, 7040);
  assert.deepEqual(ids(select({ sort: 'created', limit: '2' })), ids(fixture.runs.slice(0, 2)), '--sort created is oldest first');
});

test('query runs - a malformed filter names the flag, the value and the valid values (exit 2)', () => {
  const cases: [RunsQueryFlags, string, RegExp][] = [
    [{ status: 'done' }, '--status', /'done'.*PENDING, RUNNING, COMPLETED, FAILED, CANCELLED/],
    [{ precision: 'fp16' }, '--precision', /'fp16'.*fp32, int8, binary/],
    [{ model: 'vgg' }, '--model', /'vgg'.*mlp, vgg-small, resnet18/],
    [{ since: '2025-02-30' }, '--since', /'2025-02-30'.*ISO-8601/],
    [{ until: 'yesterday' }, '--until', /'yesterday'.*ISO-8601/],
    [{ since: '2025-01-10T25:00:00Z' }, '--since', /ISO-8601/],
    [{ sort: 'accuracy' }, '--sort', /'accuracy'.*created, finished, final_test_acc, samples_per_s, wall_time_s, name/],
    [{ limit: '0' }, '--limit', /an integer >= 1/],
    [{ limit: '5x' }, '--limit', /an integer >= 1/],
    [{ tag: '' }, '--tag', /one tag as recorded in a run config/],
    [{ tag: 'paper,table2' }, '--tag', /no comma/],
  ];
  for (const [flags, flag, message] of cases) {
    assert.throws(
      () => parseRunsQuery(flags),
      (err: unknown) => {
        assert.ok(err instanceof FlagError, `${JSON.stringify(flags)}: ${String(err)}`);
        assert.equal(err.issues[0]?.flag, flag);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, new RegExp(`^${flag}: `));
        assert.match(err.message, message);
        return true;
      },
    );
  }
});

test('query compare - COMPLETED runs by precision: n, mean, std, Δ and Welch against fp32', () => {
  const result = withQueryStore(file, {}, ({ db }) => compareRuns(db, parseCompareQuery({ by: 'precision', metric: 'test_acc' })));
  assert.equal(result.baseline, 'fp32');
  assert.deepEqual(
    result.groups.map((g) => g.key),
    ['fp32', 'binary', 'xnor'],
    'baseline first; FAILED and RUNNING runs left out',
  );
  const [fp32, binary, xnor] = result.groups as [(typeof result.groups)[0], (typeof result.groups)[0], (typeof result.groups)[0]];
  assert.equal(fp32.n, 5);
  assert.equal(fp32.noTest, 'baseline');
  assert.equal(fp32.t, null);
  assert.equal(fp32.delta, 0);
  assert.equal(fp32.sizeBytes, 4_000_000, 'fp32 size when nothing is packed');
  assert.equal(fp32.samplesPerS, 5020);
  assert.ok(Math.abs(fp32.mean! - 0.9058) < 1e-12);
  assert.ok(Math.abs(fp32.std! - 0.0019235384061671345) < 1e-12);
  assert.equal(binary.n, 5);
  assert.ok(Math.abs(binary.delta! - (0.8914 - 0.9058)) < 1e-12);
  // Reference from mpmath (see src/query/stats.test.ts for the script).
  assert.ok(Math.abs(binary.t! - -11.384199576606166) < 1e-6, `t ${binary.t}`);
  assert.ok(Math.abs(binary.df! - 7.9552517091361095) < 1e-6, `df ${binary.df}`);
  assert.ok(Math.abs(binary.p! - 3.347288724517046e-6) < 1e-6 && Math.abs(binary.p! / 3.347288724517046e-6 - 1) < 1e-6, `p ${binary.p}`);
  assert.equal(binary.sizeBytes, 130_000, 'packed size preferred');
  assert.equal(xnor.n, 1);
  assert.equal(xnor.std, null);
  assert.deepEqual([xnor.t, xnor.df, xnor.p, xnor.noTest], [null, null, null, 'n<2']);
});

test('query compare - default baseline without fp32 is the first group; a bad metric is a flag error (2), a baseline no group has fails the query (1)', () => {
  const byName = withQueryStore(file, {}, ({ db }) =>
    compareRuns(db, parseCompareQuery({ by: 'name', tag: 'paper', metric: 'samples_per_s' })),
  );
  assert.equal(byName.baseline, 'fmnist-binary');
  assert.deepEqual(
    byName.groups.map((g) => g.key),
    ['fmnist-binary', 'fmnist-fp32', 'fmnist-xnor'],
  );
  assert.ok(byName.groups[1]!.t! < 0, 'fp32 is slower than the binary baseline');

  assert.throws(
    () => parseCompareQuery({ metric: 'acc' }),
    (err: unknown) =>
      err instanceof FlagError &&
      err.exitCode === 2 &&
      /^--metric: 'acc'.*test_acc, best_test_acc, samples_per_s, wall_time_s, model_size_bytes, packed_size_bytes$/.test(err.message),
  );
  assert.throws(
    () => parseCompareQuery({ by: 'seed' }),
    (err: unknown) => err instanceof FlagError && /precision, model, dataset, name/.test(err.message),
  );
  assert.throws(
    () => withQueryStore(file, {}, ({ db }) => compareRuns(db, parseCompareQuery({ baseline: 'int8' }))),
    (err: unknown) =>
      err instanceof QueryFlagError &&
      err.exitCode === 1 &&
      /^--baseline: 'int8' is not valid; expected one of binary, fp32, xnor$/.test(err.message),
  );
  const none = withQueryStore(file, {}, ({ db }) => compareRuns(db, parseCompareQuery({ dataset: 'cifar10' })));
  assert.deepEqual(none.groups, []);
});

test('query show - a run by prefix with epochs, checkpoints and events; unknown ids name the id', () => {
  const detail = withQueryStore(file, {}, ({ db }) => runDetail(db, fixture.detailed.id.slice(0, -3)));
  assert.equal(detail.run.id, fixture.detailed.id);
  assert.deepEqual(
    detail.epochs.map((e) => e.testAcc),
    FIXTURE_EPOCH_ACCS,
  );
  assert.equal(detail.checkpoints.length, 1);
  assert.deepEqual(
    detail.events.map((e) => e.kind),
    ['created', 'started', 'checkpointed', 'completed'],
    'in time order',
  );
  assert.throws(
    () => withQueryStore(file, {}, ({ db }) => runDetail(db, 'r-nope')),
    (err: unknown) => err instanceof RunNotFoundError && err.message.includes('"r-nope"'),
  );
});

test('query sql - one read-only statement returns columns and rows', () => {
  const r = runSql(file, "SELECT precision, count(*) AS n FROM runs WHERE status = 'COMPLETED' GROUP BY precision ORDER BY precision");
  assert.deepEqual(r.columns, ['precision', 'n']);
  assert.deepEqual(r.rows, [
    ['binary', 5],
    ['fp32', 5],
    ['xnor', 1],
  ]);
  assert.deepEqual(runSql(file, "SELECT 1 AS a, 2 AS a, 9007199254740993 AS big, x'00ff' AS blob").rows, [
    [1, 2, '9007199254740993', "x'00ff'"],
  ]);
  assert.deepEqual(runSql(file, 'SELECT 1 AS a, 2 AS a').columns, ['a', 'a_2']);
  assert.equal(runSql(file, '  -- why\n WITH t AS (SELECT 1 AS x) SELECT x FROM t; ').rows.length, 1);
  assert.ok(runSql(file, 'PRAGMA table_info(runs)').rows.length > 10, 'read-only pragmas are allowed');
  assert.throws(
    () => runSql(file, 'SELECT * FROM nosuch'),
    (err: unknown) => err instanceof SqlError && /no such table: nosuch/.test(err.message),
  );
});

test('query sql - anything but one read-only statement is refused and the file is byte-identical', () => {
  const before = sha256(file);
  const refused: [string, RegExp][] = [
    ["INSERT INTO events (at, kind) VALUES ('x', 'y')", /^bnn sql is read-only: INSERT statements are refused; use a SELECT$/],
    ["UPDATE runs SET name = 'x'", /UPDATE statements are refused/],
    ['DELETE FROM runs', /DELETE statements are refused/],
    ['DROP TABLE runs', /DROP statements are refused/],
    ['CREATE TEMP TABLE t (x)', /CREATE statements are refused/],
    [`ATTACH DATABASE '${dir.join('other.db')}' AS other`, /ATTACH statements are refused/],
    ['DETACH other', /DETACH statements are refused/],
    ['VACUUM', /VACUUM statements are refused/],
    ['BEGIN IMMEDIATE', /BEGIN statements are refused/],
    ['PRAGMA user_version=5', /PRAGMA user_version=5.*refused/],
    ['PRAGMA journal_mode = DELETE', /refused/],
    ['PRAGMA wal_checkpoint(TRUNCATE)', /can change the database/],
    ['PRAGMA optimize', /can change the database/],
    ['WITH t AS (SELECT 1) DELETE FROM runs', /can change the database/],
    ['SELECT 1; DELETE FROM runs', /exactly one statement/],
    ['SELECT 1; SELECT 2', /exactly one statement/],
    ['/* only */ -- comments', /needs one SELECT/],
  ];
  for (const [statement, message] of refused) {
    assert.throws(
      () => runSql(file, statement),
      (err: unknown) => {
        assert.ok(err instanceof SqlRefusedError, `${statement}: ${String(err)}`);
        assert.equal(err.exitCode, 1);
        assert.match(err.message, message, statement);
        return true;
      },
    );
  }
  assert.equal(sha256(file), before);
  assert.equal(existsSync(dir.join('other.db')), false, 'ATTACH created nothing');
  const check = new Database(file, { readonly: true });
  try {
    assert.equal(check.pragma('user_version', { simple: true }), 0);
  } finally {
    check.close();
  }
  assert.equal(leadingKeyword(' /* a */\n-- b\n  select 1'), 'SELECT');
});

test('query store - a missing, corrupt or locked file is a StoreError naming it; nothing is created', () => {
  const missing = dir.join('nowhere', 'bnn.db');
  assert.throws(
    () => withQueryStore(missing, {}, () => 0),
    (err: unknown) => err instanceof StoreError && err.message.startsWith(missing),
  );
  assert.throws(
    () => runSql(missing, 'SELECT 1'),
    (err: unknown) => err instanceof StoreError && err.exitCode === 1,
  );
  assert.equal(existsSync(dir.join('nowhere')), false);

  const corrupt = dir.join('corrupt.db');
  writeFileSync(corrupt, 'not a database '.repeat(300));
  assert.throws(
    () => withQueryStore(corrupt, {}, () => 0),
    (err: unknown) => err instanceof StoreError && /not an SQLite database, or corrupt/.test(err.message),
  );
  assert.throws(
    () => runSql(corrupt, 'SELECT 1'),
    (err: unknown) => err instanceof StoreError && /not an SQLite database, or corrupt/.test(err.message),
  );

  // In WAL mode only an EXCLUSIVE locking-mode writer keeps readers out.
  const holder = new Database(file, { timeout: 1000 });
  holder.pragma('locking_mode = EXCLUSIVE');
  holder.exec('BEGIN EXCLUSIVE');
  try {
    holder.exec("INSERT INTO events (at, kind) VALUES ('2025-01-01T00:00:00.000Z', 'probe')");
    const locked = (err: unknown) =>
      err instanceof StoreError && err.exitCode === 1 && /locked by another process \(waited 20 ms\)/.test(err.message);
    assert.throws(() => withQueryStore(file, { lockTimeoutMs: 20 }, ({ db }) => queryRuns(db, parseRunsQuery({}))), locked);
    assert.throws(() => runSql(file, 'SELECT count(*) FROM runs', { lockTimeoutMs: 20 }), locked);
  } finally {
    holder.exec('ROLLBACK');
    holder.close();
  }
});
