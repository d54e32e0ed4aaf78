import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCli, type CliResult } from './helpers/cli.js';
import { bnn } from './helpers/in-process-cli.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function exited(r: CliResult): void {
  assert.equal(r.timedOut, false, 'child finished in time');
  assert.equal(r.signal, null, 'child exited by itself');
}

test('cli - --help lists the commands and exits 0', async () => {
  const r = await runCli(['--help']);
  exited(r);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: bnn /);
  assert.match(r.stdout, /\btrain \[options\] <config>/);
  assert.equal(r.stderr, '');
});

test('cli - --version prints the package version', async () => {
  const r = await runCli(['--version']);
  exited(r);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), VERSION);
});

test('cli - unknown command is a usage error: exit 2, one bnn: error line', async () => {
  const r = await runCli(['trian']);
  exited(r);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, "bnn: error: unknown command 'trian' (Did you mean train?) (see bnn --help)\n");
});

test('cli - unknown option and missing argument exit 2', async () => {
  const unknown = await runCli(['train', 'x.yaml', '--epoch', '3']);
  exited(unknown);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^bnn: error: unknown option '--epoch'/);
  const missing = await runCli(['train']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^bnn: error: missing required argument 'config'/);
});

test('cli - a malformed flag value is bad usage in every command: exit 2, the kebab-case flag, the value given and what is valid', async () => {
  const cases: [string[], string][] = [
    [['runs', '--limit', 'abc'], "--limit: 'abc' is not valid; expected an integer >= 1"],
    [['show', 'r-1', '--lock-timeout-ms', 'soon'], "--lock-timeout-ms: 'soon' is not valid; expected an integer >= 0"],
    [
      ['compare', '--metric', 'acc'],
      "--metric: 'acc' is not valid; expected one of test_acc, best_test_acc, samples_per_s, wall_time_s, model_size_bytes, packed_size_bytes",
    ],
    [['sql', 'SELECT 1', '--lock-timeout-ms', '-1'], "--lock-timeout-ms: '-1' is not valid; expected an integer >= 0"],
    [['report', '--out', 'r.pdf'], "--out: 'r.pdf' is not valid; expected a file name ending in .html, .htm or .md"],
    [['export', 'r-1', '--fp32-out', ''], "--fp32-out: '' is not valid; expected a path"],
    [['predict', 'm.bnnpack', '--batch-size', '0'], "--batch-size: '0' is not valid; expected an integer >= 1"],
    [
      ['monitor', '--coordinator', 'h:1', '--refresh-ms', 'fast'],
      "--refresh-ms: 'fast' is not valid; expected an integer from 100 to 60000",
    ],
    [['coordinator', '--suspect-ms', '0'], "--suspect-ms: '0' is not valid; expected an integer >= 1"],
    [['worker', '--coordinator', 'h:1', '--step-deadline-ms', '1.5'], "--step-deadline-ms: '1.5' is not valid; expected an integer >= 1"],
    [['bench', '--threads', 'all'], "--threads: 'all' is not valid; expected an integer >= 1"],
    [['bench-allreduce', '--max-payload', '1'], "--max-payload: '1' is not valid; expected an integer from 1024 to 67108864"],
    [['bench', 'scaling', '--repeats', '50'], "--repeats: '50' is not valid; expected an integer from 1 to 20"],
    [['bench-store', '--energy-epochs', 'x'], "--energy-epochs: 'x' is not valid; expected an integer >= 0"],
    [
      ['train', join(REPO_ROOT, 'examples', 'fmnist-mlp-binary.yaml'), '--threads', 'abc'],
      "--threads: 'abc' is not valid; expected engine.threads to be an integer >= 0",
    ],
    [['resume', 'x', '--threads-per-worker', 'abc'], "--threads-per-worker: 'abc' is not valid; expected an integer from 0 to 1024"],
    [
      ['launch', join(REPO_ROOT, 'examples', 'fmnist-mlp-binary.yaml'), '--local', '2', '--compression', 'zip'],
      "--compression: 'zip' is not valid; expected one of none, fp16, sign-ef",
    ],
    [
      ['launch', join(REPO_ROOT, 'examples', 'fmnist-mlp-binary.yaml'), '--coordinator', 'h', '--workers', '2'],
      "--coordinator: 'h' is not valid; expected host:port",
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => bnn(...args)));
  results.forEach((r, i) => {
    const [args, message] = cases[i]!;
    assert.equal(r.code, 2, `bnn ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `bnn: error: ${message}\n`, `bnn ${args.join(' ')}`);
  });
});

test('cli - bin/bnn.js runs the CLI (from dist/ when built, else through tsx)', async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'bnn.js'), '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.equal(out.trim(), VERSION);
});
