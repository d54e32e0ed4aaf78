import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { choiceFlag, FlagError, hostPortFlag, listFlag, numberFlag, parseFlags, textFlag } from './flags.js';

function flagError(schema: z.ZodType, raw: object): FlagError {
  try {
    parseFlags(schema, raw);
  } catch (err) {
    assert.ok(err instanceof FlagError, `expected FlagError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a FlagError');
}

test('flags - --threads-per-worker abc names the kebab-case flag, the value and the valid range; exit 2', () => {
  const err = flagError(z.object({ threadsPerWorker: numberFlag(z.number().int().min(0).max(1024)) }), { threadsPerWorker: 'abc' });
  assert.equal(err.exitCode, 2);
  assert.equal(err.message, "--threads-per-worker: 'abc' is not valid; expected an integer from 0 to 1024");
  assert.deepEqual(err.details(), { issues: [{ flag: '--threads-per-worker', value: 'abc', expected: 'an integer from 0 to 1024' }] });
});

test('flags - every bad flag is reported, one line each, in schema order', () => {
  const schema = z.object({
    limit: numberFlag(z.number().int().min(1)),
    subset: numberFlag(z.number().gt(0).lte(1)),
    backend: choiceFlag(['auto', 'native', 'cpu']),
    ok: z.string(),
  });
  const err = flagError(schema, { backend: 'natve', subset: '0', limit: '', ok: 'fine' });
  assert.deepEqual(err.message.split('\n'), [
    "--limit: '' is not valid; expected an integer >= 1",
    "--subset: '0' is not valid; expected a number in (0, 1]",
    `--backend: 'natve' is not valid; expected one of auto, native, cpu (did you mean "native"?)`,
  ]);
});

test('flags - numberFlag reads decimal text only; choiceFlag matches case-insensitively', () => {
  const schema = z.object({ n: numberFlag(z.number()), c: choiceFlag(['COMPLETED', 'FAILED']).optional() });
  assert.deepEqual(parseFlags(schema, { n: ' 12 ', c: 'completed' }), { n: 12, c: 'COMPLETED' });
  assert.equal(parseFlags(schema, { n: '0.25' }).n, 0.25);
  assert.equal(parseFlags(schema, { n: '-1e3' }).n, -1000);
  for (const bad of ['', ' ', 'ten', '0x10', '1,5', 'Infinity']) {
    assert.equal(flagError(schema, { n: bad }).issues[0]?.value, bad, bad);
  }
});

test('flags - lists: the bad item is named; an empty list and a missing value say what is expected', () => {
  const schema = z.object({
    workers: listFlag(numberFlag(z.number().int().min(1).max(64))),
    compression: listFlag(choiceFlag(['none', 'fp16', 'sign-ef']), { unique: true }),
  });
  assert.deepEqual(parseFlags(schema, { workers: '1, 2,,4', compression: 'fp16,none,fp16' }), {
    workers: [1, 2, 4],
    compression: ['fp16', 'none'],
  });
  assert.deepEqual(flagError(schema, { workers: '2,0,x,70', compression: 'none,int4' }).message.split('\n'), [
    "--workers: '0' is not valid; expected an integer from 1 to 64",
    "--workers: 'x' is not valid; expected an integer from 1 to 64",
    "--workers: '70' is not valid; expected an integer from 1 to 64",
    "--compression: 'int4' is not valid; expected one of none, fp16, sign-ef",
  ]);
  assert.deepEqual(flagError(schema, { workers: ' , ' }).message.split('\n'), [
    "--workers: ' , ' is not valid; expected a comma-separated list, each an integer from 1 to 64",
    '--compression: no value given; expected a comma-separated list of none, fp16, sign-ef',
  ]);
});

test('flags - textFlag and .describe() give the wording where the schema cannot', () => {
  const schema = z.object({
    coordinator: hostPortFlag,
    out: textFlag('a file name ending in .md', (t) => (t.endsWith('.md') ? { file: t } : undefined)),
    httpPort: numberFlag(z.number().int().min(0).max(65535)).describe('a port from 0 to 65535 (0: a free one)'),
  });
  assert.deepEqual(parseFlags(schema, { coordinator: '[::1]:50051', out: 'r.md', httpPort: '0' }), {
    coordinator: '[::1]:50051',
    out: { file: 'r.md' },
    httpPort: 0,
  });
  assert.deepEqual(flagError(schema, { coordinator: 'localhost', out: 'r.pdf', httpPort: 'lots' }).message.split('\n'), [
    "--coordinator: 'localhost' is not valid; expected host:port",
    "--out: 'r.pdf' is not valid; expected a file name ending in .md",
    "--http-port: 'lots' is not valid; expected a port from 0 to 65535 (0: a free one)",
  ]);
});

test('flags - defaults and optional flags come back typed; unknown keys are dropped', () => {
  const schema = z.object({ repeats: numberFlag(z.number().int().min(1)).default(5), name: z.string().optional() });
  assert.deepEqual(parseFlags(schema, { json: true }), { repeats: 5 });
});
