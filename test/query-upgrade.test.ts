import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { before, after, test } from 'node:test';
import Database from 'better-sqlite3';
import { currentSchemaVersion } from '../src/store/index.js';
import { insertLegacyEnergy, insertLegacyEpoch, insertLegacyRun, legacyStore } from './store-legacy.js';
import { bnn } from './helpers/in-process-cli.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';

/**
 * A user upgrading bnn-cluster keeps their experiment database: the read-only query commands
 * (runs, show, compare, report) upgrade a store from an older schema on open, saying so in
 * one line on stderr, then answer as usual. `bnn sql` never writes, so it refuses such a
 * store and says how to upgrade it. A store from a newer schema is refused by all of them.
 */

let dir: TmpDir;
/** A schema-2 store (as the release before the scale indexes wrote it), never opened by this build. */
let v2: string;
const FP32 = 'r-20250101-000000-aaaa';
const BINARY = 'r-20250101-000100-bbbb';

before(async () => {
  dir = await tmpDir({ prefix: 'bnn-query-upgrade-' });
  v2 = dir.join('v2.db');
  const raw = legacyStore(dir.path, v2, 2);
  insertLegacyRun(raw, {
    id: FP32,
    name: 'old-fp32',
    precision: 'fp32',
    status: 'COMPLETED',
    createdAt: '2025-01-01T00:00:00.000Z',
    finalTestAcc: 0.9,
    samplesPerS: 5000,
  });
  insertLegacyRun(raw, {
    id: BINARY,
    name: 'old-binary',
    precision: 'binary',
    status: 'COMPLETED',
    createdAt: '2025-01-01T00:01:00.000Z',
    finalTestAcc: 0.88,
    samplesPerS: 7000,
  });
  insertLegacyEpoch(raw, FP32, 1, 5000, 12, 0.9); // 60,000 samples
  insertLegacyEpoch(raw, BINARY, 1, 7000, 10, 0.87); // 70,000 samples
  insertLegacyEpoch(raw, BINARY, 2, 7000, 10, 0.88); // 70,000 samples
  insertLegacyEnergy(raw, FP32, 1, 1200, 'rapl');
  insertLegacyEnergy(raw, BINARY, 1, 700, 'rapl');
  insertLegacyEnergy(raw, BINARY, 2, 700, 'estimate');
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
});
after(() => dir.cleanup());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A fresh copy of the schema-2 store. */
function copyOfV2(name: string): string {
  const file = dir.join(name);
  copyFileSync(v2, file);
  return file;
}

const schemaVersion = (file: string): string => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string }).value;
  } finally {
    db.close();
  }
};

const upgradedLine = (file: string) =>
  `bnn: upgraded ${file} from schema 2 to ${currentSchemaVersion()} (one-time; older bnn builds will refuse it now)\n`;

test('query upgrade - bnn sql refuses a schema-2 store with how to upgrade it, and leaves the file as it was', async () => {
  const file = copyOfV2('sql.db');
  const hash = sha256(file);
  const r = await bnn('sql', 'SELECT count(*) AS n FROM runs', '--store', file);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    `bnn: error: ${file}: its schema is ${currentSchemaVersion() - 2} migration(s) behind (schema 2, this build writes ${currentSchemaVersion()}); ` +
      `bnn sql never writes, so it does not upgrade it: run bnn runs --store ${file} once (it upgrades the file), then query again\n`,
  );
  assert.equal(sha256(file), hash, 'byte-identical');
  assert.equal(schemaVersion(file), '2');
});

test('query upgrade - bnn runs upgrades a schema-2 store on open (one stderr line), answers, and backfills the run totals', async () => {
  const file = copyOfV2('runs.db');
  const first = await bnn('runs', '--json', '--store', file);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stderr, upgradedLine(file));
  const rows = JSON.parse(first.stdout) as {
    id: string;
    energyJoules: number | null;
    energySources: string | null;
    trainedSamples: number | null;
  }[];
  assert.deepEqual(
    rows.map((r) => [r.id, r.energyJoules, r.energySources, r.trainedSamples]),
    [
      [BINARY, 1400, 'rapl+estimate', 140_000],
      [FP32, 1200, 'rapl', 60_000],
    ],
  );
  assert.equal(schemaVersion(file), String(currentSchemaVersion()));

  // Upgraded once: the next command says nothing about it, and bnn sql now reads it.
  const again = await bnn('runs', '--store', file);
  assert.equal(again.code, 0);
  assert.doesNotMatch(again.stderr, /upgraded/);
  const sql = await bnn('sql', 'SELECT id, trained_samples FROM runs ORDER BY id', '--json', '--store', file);
  assert.equal(sql.code, 0, sql.stderr);
  assert.deepEqual(JSON.parse(sql.stdout), [
    { id: FP32, trained_samples: 60_000 },
    { id: BINARY, trained_samples: 140_000 },
  ]);
});

test('query upgrade - show, compare and report upgrade a schema-2 store too, with the same numbers as from the rows', async () => {
  const showFile = copyOfV2('show.db');
  const show = await bnn('show', BINARY, '--store', showFile);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stderr, upgradedLine(showFile));
  assert.match(
    show.stdout,
    /^energy:\s+1400 J \(rapl\+estimate, estimate: CPU time × assumed watts per core\); 10\.0 mJ\/sample over 140,000 samples$/m,
  );

  const compareFile = copyOfV2('compare.db');
  const compare = await bnn('compare', '--json', '--store', compareFile);
  assert.equal(compare.code, 0, compare.stderr);
  assert.equal(compare.stderr, upgradedLine(compareFile));
  const groups = (
    JSON.parse(compare.stdout) as { groups: { key: string; joulesPerSample: number; energySource: string; energyEstimated: boolean }[] }
  ).groups;
  // Hand-computed: fp32 1200 J / 60,000 samples; binary (700 + 700) J / 140,000 samples.
  assert.deepEqual(
    groups.map((g) => [g.key, g.joulesPerSample, g.energySource, g.energyEstimated]),
    [
      ['fp32', 0.02, 'rapl', false],
      ['binary', 0.01, 'rapl+estimate', true],
    ],
  );

  const reportFile = copyOfV2('report.db');
  const report = await bnn('report', '--out', dir.join('report.md'), '--store', reportFile);
  assert.equal(report.code, 0, report.stderr);
  assert.equal(report.stderr.split('\n')[0], upgradedLine(reportFile).trimEnd());
  assert.match(report.stderr, /^wrote .*report\.md: 2 runs in 2 groups/m);
});

test('query upgrade - an empty or foreign SQLite file is not upgraded: every query command refuses it, unchanged', async () => {
  const empty = dir.join('empty.db');
  new Database(empty).close();
  const foreign = dir.join('foreign.db');
  const raw = new Database(foreign);
  raw.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')");
  raw.close();
  for (const file of [empty, foreign]) {
    const hash = sha256(file);
    for (const args of [['runs'], ['show', FP32], ['compare'], ['sql', 'SELECT 1'], ['report', '--out', dir.join('foreign.html')]]) {
      const r = await bnn(...args, '--store', file);
      assert.equal(r.code, 1, `bnn ${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(
        r.stderr,
        `bnn: error: ${file}: not a bnn-cluster experiment database: it has none of its tables (pass the file bnn train or bnn launch records runs in)\n`,
      );
    }
    assert.equal(sha256(file), hash, `${file} byte-identical`);
  }
});

test('query upgrade - a store from a newer schema is refused by every query command, unchanged', async () => {
  const file = dir.join('future.db');
  await bnn('runs', '--store', copyOfV2('seed.db'));
  copyFileSync(dir.join('seed.db'), file);
  const raw = new Database(file);
  const future = currentSchemaVersion() + 1;
  raw.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(future));
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  const hash = sha256(file);
  const listing = () =>
    readdirSync(dir.path)
      .filter((f) => !/-(wal|shm)$/.test(f))
      .sort();
  const files = listing();
  const message = new RegExp(
    `^bnn: error: ${escapeRegExp(file)}: was written by a newer bnn-cluster \\(schema ${future}, this build knows ${currentSchemaVersion()}\\); upgrade bnn-cluster\\n$`,
  );
  for (const args of [['runs'], ['show', FP32], ['compare'], ['sql', 'SELECT 1'], ['report', '--out', dir.join('future.html')]]) {
    const r = await bnn(...args, '--store', file);
    assert.equal(r.code, 1, `bnn ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, message, `bnn ${args.join(' ')}`);
  }
  assert.equal(sha256(file), hash, 'byte-identical');
  assert.deepEqual(listing(), files, 'no report or other file written');
});
