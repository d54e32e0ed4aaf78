import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildFixtureStore, type Fixture } from '../src/query/test-fixture.js';
import { openStore } from '../src/store/db.js';
import { addEnergySamples } from '../src/store/energy.js';
import { addEpochMetrics } from '../src/store/metrics.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { bnnResult } from './helpers/in-process-cli.js';
import { tmpDir, type TmpDir } from './helpers/tmp.js';

let dir: TmpDir;
let file: string;
let fixture: Fixture;

/** Joules written per run below; J/sample = joules / (samples_per_s × epoch_time_s summed over epochs). */
const BINARY_JOULES = 119_000;

before(async () => {
  dir = await tmpDir({ prefix: 'bnn-report-' });
  file = dir.join('bnn.db');
  fixture = buildFixtureStore(file);
  const store = openStore(file);
  try {
    // A second binary run with a curve, and energy for two runs: an estimate and a measurement.
    const binary2 = fixture.runs.find((r) => r.precision === 'binary' && r.seed === 1)!;
    [0.82, 0.86, 0.89].forEach((testAcc, e) =>
      addEpochMetrics(store.db, binary2.id, {
        epoch: e + 1,
        trainLoss: 0.5,
        trainAcc: 0.8,
        testLoss: 0.4,
        testAcc,
        lr: 0.001,
        samplesPerS: 7000,
        epochTimeS: 10,
      }),
    );
    const fp32 = fixture.runs.find((r) => r.precision === 'fp32' && r.seed === 0)!;
    addEpochMetrics(store.db, fp32.id, {
      epoch: 1,
      trainLoss: 0.4,
      trainAcc: 0.85,
      testLoss: 0.3,
      testAcc: 0.9,
      lr: 0.001,
      samplesPerS: 5000,
      epochTimeS: 12,
    });
    addEnergySamples(store.db, [
      { runId: fixture.detailed.id, epoch: 1, joules: BINARY_JOULES, source: 'estimate' },
      { runId: fp32.id, epoch: 1, joules: 30_000, source: 'rapl' },
    ]);
  } finally {
    store.close();
  }
});
after(() => dir.cleanup());

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const bnnIn = (...args: string[]): Promise<CliResult> => bnnResult([...args, '--store', file]);

/** The cells of each body row of the n-th <table> in an HTML page. */
function htmlTableRows(html: string, n: number): string[][] {
  const table = [...html.matchAll(/<table>([\s\S]*?)<\/table>/g)][n]![1]!;
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)![1]!;
  const unescapeHtml = (s: string) => s.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...r[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => unescapeHtml(c[1]!)),
  );
}

/** Resource references that would need the network: src/href/url()/@import to http(s), and any script or link element. */
function externalReferences(text: string): string[] {
  const patterns = [
    /(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?\/\//gi,
    /url\(\s*["']?\s*(?:https?:)?\/\//gi,
    /@import/gi,
    /<script\b/gi,
    /<link\b/gi,
    /<iframe\b/gi,
  ];
  return patterns.flatMap((p) => text.match(p) ?? []);
}

test('report - HTML from a real store: inline SVG charts, and the comparison table has bnn compare’s numbers', async () => {
  const out = dir.join('report.html');
  const [report, compare, compareJson] = await Promise.all([
    bnnIn('report', '--out', out, '--json'),
    bnnIn('compare', '--by', 'precision', '--metric', 'test_acc'),
    bnnIn('compare', '--by', 'precision', '--metric', 'test_acc', '--json'),
  ]);
  assert.equal(report.code, 0, report.stderr);
  const summary = JSON.parse(report.stdout) as { out: string; runs: number; charts: string[] };
  assert.equal(summary.out, out);
  assert.equal(summary.runs, 11);
  assert.deepEqual(summary.charts, ['metric-by-group', 'size-by-group', 'energy-by-group', 'training-curves']);

  const html = readFileSync(out, 'utf8');
  assert.equal((html.match(/<svg\b/g) ?? []).length, 4, 'four inline SVG charts');
  for (const id of summary.charts) assert.match(html, new RegExp(`<figure id="${id}">\\s*<figcaption>[^<]+</figcaption>\\s*<svg`));
  assert.deepEqual(externalReferences(html), [], 'nothing to fetch: opens offline');

  // Row for row, cell for cell the same as the terminal table of `bnn compare`.
  assert.equal(compare.code, 0, compare.stderr);
  const terminalRows = compare.stdout.split('\n\n')[0]!.split('\n').slice(1);
  const htmlRows = htmlTableRows(html, 0);
  assert.equal(htmlRows.length, terminalRows.length);
  htmlRows.forEach((cells, i) =>
    assert.equal(
      cells
        .filter((c) => c !== '')
        .join(' ')
        .replace(/\s+/g, ' '),
      terminalRows[i]!.trim().replace(/\s+/g, ' '),
    ),
  );

  // And against the numbers themselves (Welch reference values are in test/query-cli.test.ts).
  const groups = (
    JSON.parse(compareJson.stdout) as {
      groups: { key: string; n: number; t: number | null; p: number | null; joulesPerSample: number | null }[];
    }
  ).groups;
  const binary = groups.find((g) => g.key === 'binary')!;
  const binaryRow = htmlRows.find((r) => r[0] === 'binary')!;
  assert.deepEqual(binaryRow.slice(0, 7), ['binary', '5', '89.14% ± 0.21%', '-1.44 pp', binary.t!.toFixed(3), '7.96', '3.35e-6']);
  assert.equal(binary.t!.toFixed(3), '-11.384');
  // 119 kJ over 5 epochs of the detailed run (7000 samples/s × 8.5 s each) = 0.4 mJ per sample: an estimate, labelled so.
  assert.ok(Math.abs(binary.joulesPerSample! - BINARY_JOULES / (5 * 7000 * 8.5)) < 1e-12);
  assert.equal(binaryRow[9], `${((BINARY_JOULES / (5 * 7000 * 8.5)) * 1000).toPrecision(3)} mJ (estimate)`);
  assert.equal(htmlRows.find((r) => r[0] === 'fp32')![9], `${((30_000 / 60_000) * 1000).toPrecision(3)} mJ (rapl)`);
  assert.match(html, /J\/sample marked estimate is CPU time × assumed watts per core, not a measurement/);
  assert.match(html, /<figcaption>Energy per training sample by precision \(estimate: /);

  // One row per compared run, each with its metric value.
  const runRows = htmlTableRows(html, 1);
  assert.equal(runRows.length, 11);
  assert.deepEqual(runRows.find((r) => r[0] === fixture.detailed.id)!.slice(1, 5), ['fmnist-binary', 'binary', '0', '89.10%']);
  assert.deepEqual(
    readdirSync(dir.path).filter((f) => f.includes('.tmp-')),
    [],
    'no temporary files left',
  );
});

test('report - Markdown with the charts as SVG files beside it; --runs picks runs by id prefix', async () => {
  const out = dir.join('sub', 'paper.md');
  mkdirSync(dir.join('sub'));
  const fp32 = fixture.runs.filter((r) => r.precision === 'fp32').slice(0, 2);
  const binary = fixture.runs.filter((r) => r.precision === 'binary' && r.status === 'COMPLETED').slice(0, 3);
  const ids = [...fp32, ...binary].map((r) => r.id.slice(0, 20)).join(',');
  const r = await bnnIn('report', '--out', out, '--runs', ids);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /wrote .*paper\.md: 5 runs in 2 groups, 4 charts/);
  const md = readFileSync(out, 'utf8');
  assert.deepEqual(readdirSync(dir.join('sub')).sort(), ['paper-charts', 'paper.md']);
  const linked = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
  assert.deepEqual(
    linked,
    ['metric-by-group', 'size-by-group', 'energy-by-group', 'training-curves'].map((id) => `paper-charts/${id}.svg`),
  );
  for (const link of linked) {
    const svg = readFileSync(dir.join('sub', link), 'utf8');
    assert.match(svg, /^<svg[^>]*>/);
    assert.deepEqual(externalReferences(svg), []);
  }
  assert.match(md, /^\| PRECISION \| N \| test_acc MEAN ± STD \|/m);
  assert.match(md, /^\| fp32 \| 2 \| /m);
  assert.match(md, /^\| binary \| 3 \| /m);
  assert.deepEqual(externalReferences(md), []);

  // Written again: replaced whole, nothing else left beside it.
  const again = await bnnIn('report', '--out', out, '--runs', ids);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(dir.join('sub')).sort(), ['paper-charts', 'paper.md']);
});

test('report - bad input: no runs match, unknown run id, unwritable or blocked path, unknown extension; nothing written', async () => {
  const before = sha256(file);
  const listing = () => readdirSync(dir.path).sort();
  const blocker = dir.join('not-a-folder');
  writeFileSync(blocker, 'x');
  mkdirSync(dir.join('taken.html'));
  const was = listing();
  const [noMatch, unknownRun, missingDir, underFile, dirInWay, pdf, noOut] = await Promise.all([
    bnnIn('report', '--out', dir.join('none.html'), '--tag', 'no-such-tag'),
    bnnIn('report', '--out', dir.join('unknown.html'), '--runs', `${fixture.detailed.id},r-20990101`),
    bnnIn('report', '--out', dir.join('missing', 'r.html')),
    runCli(['report', '--out', `${blocker}/r.md`, '--store', file]),
    bnnIn('report', '--out', dir.join('taken.html')),
    bnnIn('report', '--out', dir.join('report.pdf'), '--json'),
    bnnIn('report'),
  ]);
  assert.equal(noMatch.code, 1);
  assert.match(
    noMatch.stderr,
    /^bnn: error: no COMPLETED runs with a test_acc value match \(tag=no-such-tag\); bnn runs --status completed lists what is recorded\n$/,
  );
  assert.equal(unknownRun.code, 1);
  assert.equal(unknownRun.stderr, 'bnn: error: no run with id or id prefix "r-20990101"\n');
  assert.equal(missingDir.code, 1);
  assert.match(missingDir.stderr, /r\.html: cannot write the report: folder .*missing does not exist \(create it first\)/);
  assert.equal(underFile.code, 1, underFile.stderr);
  assert.match(underFile.stderr, /cannot write the report: folder .*not-a-folder does not exist/);
  assert.doesNotMatch(underFile.stderr, /internal error|\n\s+at /);
  assert.equal(dirInWay.code, 1);
  assert.match(dirInWay.stderr, /taken\.html: cannot write the report: a folder of that name is in the way/);
  // A malformed flag value and a missing required option are both bad usage (exit 2).
  assert.equal(pdf.code, 2);
  const err = (JSON.parse(pdf.stdout) as { error: { type: string; issues: unknown[] } }).error;
  assert.equal(err.type, 'FlagError');
  assert.deepEqual(err.issues, [{ flag: '--out', value: dir.join('report.pdf'), expected: 'a file name ending in .html, .htm or .md' }]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /required option '--out <file>' not specified/);
  assert.deepEqual(listing(), was, 'no report, chart folder or temporary file written');
  assert.equal(existsSync(dir.join('missing')), false);
  assert.equal(sha256(file), before, 'database unchanged');
});
