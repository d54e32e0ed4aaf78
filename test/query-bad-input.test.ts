import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { buildFixtureStore, type Fixture } from '../src/query/test-fixture.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { bnnResult } from './helpers/in-process-cli.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';

/**
 * Every query command (runs, show, compare, sql, report) against bad input: an unknown run
 * id, a malformed filter, an unknown metric, a locked and a corrupt database. Each must exit
 * with a clear one-line error naming the problem, print nothing on stdout, and write
 * nothing: the database is byte-identical (sha256) and its folder lists the same files.
 * Bad usage (a malformed flag value, an unknown flag, a missing argument) exits 2; a
 * well-formed value naming nothing in the store, bad SQL or a bad database exits 1.
 */

let dir: TmpDir;
let file: string;
let fixture: Fixture;

before(async () => {
  dir = await tmpDir({ prefix: 'bnn-query-bad-' });
  file = dir.join('bnn.db');
  fixture = buildFixtureStore(file);
  // Checkpoint the WAL so the main file holds everything and later reads change nothing.
  const db = new Database(file);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
});
after(() => dir.cleanup());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const bnnIn = bnnResult;

/** Runs each case, then checks the exit code, the message, empty stdout, and that nothing was written. */
async function expectRefused(
  store: string,
  cases: readonly { args: string[]; code: 1 | 2; message: RegExp }[],
  run: (args: readonly string[]) => Promise<CliResult> = bnnIn,
  /** Takes a lock after the file was hashed and returns its release, called before it is hashed again. */
  lock?: () => () => void,
): Promise<void> {
  const hash = sha256(store);
  // A reader of a WAL database may create its -wal and -shm companions; the data stays in bnn.db.
  const files = () =>
    readdirSync(dir.path)
      .filter((f) => !/-(wal|shm)$/.test(f))
      .sort();
  const listing = files();
  // Hashing reads the file, and closing any descriptor of it drops this process's POSIX
  // locks on it: so the lock is taken after the first hash and released before the second.
  const release = lock?.();
  let results: CliResult[];
  try {
    results = await Promise.all(cases.map((c) => run([...c.args, '--store', store])));
  } finally {
    release?.();
  }
  results.forEach((r, i) => {
    const c = cases[i]!;
    const label = `bnn ${c.args.join(' ')}`;
    assert.equal(r.code, c.code, `${label}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stdout, '', `${label}: nothing on stdout`);
    assert.match(r.stderr, c.message, label);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `${label}: one line, no stack\n${r.stderr}`);
  });
  assert.equal(sha256(store), hash, 'database byte-identical');
  assert.deepEqual(files(), listing, 'no file created or removed beside it');
}

test('query bad input - unknown run id: show, compare --runs and report --runs exit 1 naming the id', async () => {
  await expectRefused(file, [
    { args: ['show', 'r-20990101-000000-0000'], code: 1, message: /^bnn: error: no run with id or id prefix "r-20990101-000000-0000"$/m },
    { args: ['show', 'r-2025'], code: 1, message: /^bnn: error: run id prefix "r-2025" is ambiguous: it matches r-2025/m },
    { args: ['compare', '--runs', `${fixture.detailed.id},nope`], code: 1, message: /^bnn: error: no run with id or id prefix "nope"$/m },
    {
      args: ['report', '--out', dir.join('r.html'), '--runs', 'nope'],
      code: 1,
      message: /^bnn: error: no run with id or id prefix "nope"$/m,
    },
  ]);
});

test('query bad input - malformed filters and unknown metrics are bad usage (exit 2) naming the flag, the value and what is valid', async () => {
  await expectRefused(file, [
    { args: ['runs', '--limit', 'abc'], code: 2, message: /^bnn: error: --limit: 'abc' is not valid; expected an integer >= 1$/m },
    {
      args: ['runs', '--since', '2025-02-30'],
      code: 2,
      message: /^bnn: error: --since: '2025-02-30' is not valid; expected an ISO-8601 date/m,
    },
    {
      args: ['runs', '--status', 'done,completed'],
      code: 2,
      message: /--status: 'done' is not valid; expected one of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ABANDONED$/m,
    },
    {
      args: ['runs', '--tag', 'paper,table2'],
      code: 2,
      message:
        /--tag: 'paper,table2' is not valid; expected one tag as recorded in a run config \(non-empty, no leading or trailing blanks, no comma/m,
    },
    { args: ['runs', '--tag', ' '], code: 2, message: /--tag: ' ' is not valid/m },
    { args: ['runs', '--limit', '-3'], code: 2, message: /--limit: '-3' is not valid; expected an integer >= 1$/m },
    { args: ['runs', '--lock-timeout-ms', 'soon'], code: 2, message: /--lock-timeout-ms: 'soon' is not valid; expected an integer >= 0$/m },
    { args: ['show', fixture.detailed.id, '--lock-timeout-ms', '-1'], code: 2, message: /--lock-timeout-ms: '-1' is not valid/m },
    { args: ['compare', '--until', 'yesterday'], code: 2, message: /--until: 'yesterday' is not valid/m },
    {
      args: ['compare', '--by', 'color'],
      code: 2,
      message: /--by: 'color' is not valid; expected one of precision, model, dataset, name$/m,
    },
    {
      args: ['compare', '--metric', 'f1'],
      code: 2,
      message: /--metric: 'f1' is not valid; expected one of test_acc, best_test_acc, samples_per_s/m,
    },
    { args: ['compare', '--runs', ' , '], code: 2, message: /--runs: ' , ' is not valid; expected a comma-separated list of run ids/m },
    { args: ['report', '--out', dir.join('r.html'), '--metric', 'f1'], code: 2, message: /--metric: 'f1' is not valid/m },
    {
      args: ['report', '--out', dir.join('r.html'), '--precision', 'fp8'],
      code: 2,
      message: /--precision: 'fp8' is not valid; expected one of fp32, int8, binary/m,
    },
    {
      args: ['report', '--out', dir.join('r.pdf')],
      code: 2,
      message: /--out: '.*r\.pdf' is not valid; expected a file name ending in \.html, \.htm or \.md$/m,
    },
  ]);
});

test('query bad input - a well-formed value naming nothing in the store, and SQL that SQLite refuses, fail at run time (exit 1)', async () => {
  await expectRefused(file, [
    {
      args: ['compare', '--baseline', 'fp8'],
      code: 1,
      message: /^bnn: error: --baseline: 'fp8' is not valid; expected one of binary, fp32, xnor$/m,
    },
    { args: ['sql', 'SELECT nope FROM runs'], code: 1, message: /no such column: nope/m },
  ]);
});

test('query bad input - usage errors (unknown flag, missing or extra argument) stay exit 2', async () => {
  await expectRefused(file, [
    { args: ['runs', '--colour', 'red'], code: 2, message: /^bnn: error: unknown option '--colour'/m },
    { args: ['runs', 'extra'], code: 2, message: /^bnn: error: too many arguments for 'runs'/m },
    { args: ['show'], code: 2, message: /^bnn: error: missing required argument 'run'/m },
    { args: ['sql'], code: 2, message: /^bnn: error: missing required argument 'statement'/m },
  ]);
});

test('query bad input - a corrupt database: every command exits 1 naming the file, which is left as it was', async () => {
  const corrupt = dir.join('corrupt.db');
  writeFileSync(corrupt, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080, 0xab)]));
  const named = new RegExp(`^bnn: error: ${corrupt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not an SQLite database, or corrupt`, 'm');
  await expectRefused(corrupt, [
    { args: ['runs'], code: 1, message: named },
    { args: ['show', fixture.detailed.id], code: 1, message: named },
    { args: ['compare'], code: 1, message: named },
    { args: ['sql', 'SELECT 1'], code: 1, message: named },
    { args: ['report', '--out', dir.join('r.html')], code: 1, message: named },
  ]);
});

test('query bad input - a locked database: every command waits --lock-timeout-ms, then exits 1 saying so; nothing written', async () => {
  // Readers of the tests above left the WAL index behind (a read-only connection cannot remove
  // it); the last read-write close removes it, so the holder below really excludes readers.
  const tidy = new Database(file);
  tidy.pragma('wal_checkpoint(TRUNCATE)');
  tidy.close();
  const locked =
    /^bnn: error: .*bnn\.db: the database is locked by another process \(waited 50 ms\); try again when it has finished, or raise --lock-timeout-ms$/m;
  const lock = () => {
    const holder = new Database(file, { timeout: 1000 });
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE');
    // The write takes the WAL's exclusive lock (in WAL mode readers are blocked only then); it is rolled back.
    holder.exec("INSERT INTO events (at, kind) VALUES ('2025-01-01T00:00:00.000Z', 'probe')");
    return () => {
      holder.exec('ROLLBACK');
      holder.close();
    };
  };
  // Child processes: the lock must be another process's, as in real use.
  await expectRefused(
    file,
    [
      { args: ['runs', '--lock-timeout-ms', '50'], code: 1, message: locked },
      { args: ['show', fixture.detailed.id, '--lock-timeout-ms', '50'], code: 1, message: locked },
      { args: ['compare', '--lock-timeout-ms', '50'], code: 1, message: locked },
      { args: ['sql', 'SELECT count(*) FROM runs', '--lock-timeout-ms', '50'], code: 1, message: locked },
      { args: ['report', '--out', dir.join('r.html'), '--lock-timeout-ms', '50'], code: 1, message: locked },
    ],
    (args) => runCli(args),
    lock,
  );
  const check = new Database(file, { readonly: true });
  assert.equal((check.prepare("SELECT count(*) AS n FROM events WHERE kind = 'probe'").get() as { n: number }).n, 0);
  check.close();
});
