import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCli, type CliResult } from './helpers/cli.js';

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

test('cli - bin/bnn.js runs the CLI (from dist/ when built, else through tsx)', async () => {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'bnn.js'), '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.equal(out.trim(), VERSION);
});
