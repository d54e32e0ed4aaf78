import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { CommanderError } from 'commander';
import { CheckpointError } from '../checkpoint/errors.js';
import { ConfigError } from '../config/errors.js';
import { RunNotFoundError, StoreError } from '../store/errors.js';
import { UserError } from '../util/errors.js';
import type { CliIO } from './command.js';
import { FlagError } from '../config/flags.js';
import { handleError, wantsJson } from './handle-error.js';

function capture(): CliIO & { out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (b: Buffer) => (out += b.toString()));
  stderr.on('data', (b: Buffer) => (err += b.toString()));
  return { stdout, stderr, out: () => out, err: () => err };
}

test('handle-error - user errors print one bnn: error line each, no stack', () => {
  const cases: [Error, number, string][] = [
    [
      new ConfigError([{ path: 'train.epochs', message: 'must be an integer >= 1, got 0', source: 'a.yaml', line: 3 }]),
      1,
      'a.yaml:3: train.epochs: must be',
    ],
    [
      new ConfigError([{ path: 'seed', message: 'expected seed to be an integer >= 0', source: '--seed', value: '-1' }], { exitCode: 2 }),
      2,
      "--seed: '-1' is not valid; expected seed to be",
    ],
    [new StoreError('/x/bnn.db', 'not an SQLite database'), 1, '/x/bnn.db: not an SQLite database'],
    [new RunNotFoundError('r-1'), 1, 'no run with id or id prefix "r-1"'],
    [CheckpointError.at('/c.safetensors', 'truncated'), 1, 'checkpoint /c.safetensors: truncated'],
    [Object.assign(new Error('foreign but friendly'), { userFacing: true }), 1, 'foreign but friendly'],
    [new UserError('bad usage', { exitCode: 2 }), 2, 'bad usage'],
    [
      new FlagError([{ flag: '--limit', value: 'abc', expected: 'an integer >= 1' }]),
      2,
      "--limit: 'abc' is not valid; expected an integer >= 1",
    ],
  ];
  for (const [error, code, text] of cases) {
    const io = capture();
    assert.equal(handleError(error, { json: false, io }), code, error.name);
    assert.equal(io.err(), `bnn: error: ${error.message}\n`);
    assert.ok(io.err().includes(text), io.err());
    assert.equal(io.out(), '');
  }
});

test('handle-error - multi-line messages get the prefix on every line', () => {
  const io = capture();
  const err = new ConfigError([
    { path: 'a', message: 'x', source: 'f.yaml' },
    { path: 'b', message: 'y', source: 'f.yaml' },
  ]);
  handleError(err, { json: false, io });
  assert.equal(io.err(), 'bnn: error: f.yaml: a: x\nbnn: error: f.yaml: b: y\n');
});

test('handle-error - --json prints {"error": ...} on stdout with details', () => {
  const io = capture();
  const err = new ConfigError([{ path: 'seed', message: 'must be an integer >= 0, got -1', source: 'a.yaml', line: 1 }]);
  assert.equal(handleError(err, { json: true, io }), 1);
  const parsed = JSON.parse(io.out()) as { error: { type: string; exitCode: number; issues: unknown[] } };
  assert.equal(parsed.error.type, 'ConfigError');
  assert.equal(parsed.error.exitCode, 1);
  assert.deepEqual(parsed.error.issues, err.issues);
  assert.equal(io.err(), '');
});

test('handle-error - --json with a FlagError lists each bad flag, its value and what is valid', () => {
  const io = capture();
  const issues = [
    { flag: '--limit', value: 'abc', expected: 'an integer >= 1' },
    { flag: '--sort', value: 'acc', expected: 'one of created, name' },
  ];
  assert.equal(handleError(new FlagError(issues), { json: true, io }), 2);
  assert.deepEqual(JSON.parse(io.out()), {
    error: {
      type: 'FlagError',
      message: "--limit: 'abc' is not valid; expected an integer >= 1\n--sort: 'acc' is not valid; expected one of created, name",
      exitCode: 2,
      issues,
    },
  });
});

test('handle-error - commander usage errors exit 2, help and version exit 0', () => {
  const io = capture();
  assert.equal(handleError(new CommanderError(1, 'commander.unknownCommand', "error: unknown command 'x'"), { json: false, io }), 2);
  assert.equal(io.err(), "bnn: error: unknown command 'x' (see bnn --help)\n");
  assert.equal(handleError(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), { json: false, io }), 0);
  assert.equal(handleError(new CommanderError(0, 'commander.version', '0.1.0'), { json: false, io }), 0);
  assert.equal(handleError(new CommanderError(1, 'commander.help', '(outputHelp)'), { json: false, io }), 2);
});

test('handle-error - unknown errors are bugs: stack printed, exit 1', () => {
  const io = capture();
  const bug = new TypeError('cannot read x of undefined');
  assert.equal(handleError(bug, { json: false, io }), 1);
  assert.match(io.err(), /^bnn: internal error \(this is a bug, please report it\): cannot read x of undefined\n/);
  assert.ok(io.err().includes('handle-error.test.ts'), 'stack included');
  const j = capture();
  assert.equal(handleError('thrown string', { json: true, io: j }), 1);
  assert.equal(JSON.parse(j.out()).error.type, 'InternalError');
});

test('handle-error - wantsJson stops at --', () => {
  assert.equal(wantsJson(['train', 'x.yaml', '--json']), true);
  assert.equal(wantsJson(['train', '--', '--json']), false);
  assert.equal(wantsJson(['train']), false);
});
