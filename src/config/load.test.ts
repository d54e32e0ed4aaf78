import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { tmpDir } from '../../test/helpers/tmp.js';
import { ConfigError } from './errors.js';
import { configHash, sameExperiment, stableStringify } from './hash.js';
import { loadConfig, parseConfigText } from './load.js';
import { defaultRunConfig, PRECISIONS } from './schema.js';

const parse = (text: string) => parseConfigText(text, { source: 'exp.yaml' });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('config - empty document gives every default', () => {
  const config = parse('');
  assert.deepEqual(config, defaultRunConfig());
  assert.equal(config.train.optimizer.binaryLr, 0.01);
  assert.deepEqual(config.dataset.synthetic.shape, [8, 8, 1]);
  assert.equal(config.dataset.dir, null);
});

test('config - nested fields keep their siblings default', () => {
  const config = parse('train:\n  optimizer:\n    lr: 0.005\nmodel: {hidden: [512]}\n');
  assert.equal(config.train.optimizer.lr, 0.005);
  assert.equal(config.train.optimizer.beta2, 0.999);
  assert.equal(config.train.epochs, 15);
  assert.deepEqual(config.model.hidden, [512]);
  assert.equal(config.model.precision, 'binary');
});

test('config - unknown key names its path and the allowed keys', () => {
  const err = configError(() => parse('train:\n  optimzer:\n    lr: 0.1\n'));
  assert.equal(err.issues.length, 1);
  const [issue] = err.issues;
  assert.equal(issue!.path, 'train.optimzer');
  assert.equal(issue!.line, 2);
  assert.match(issue!.message, /unknown key/);
  assert.match(issue!.message, /did you mean "optimizer"/);
  assert.match(issue!.message, /epochs, batchSize, optimizer, schedule/);
  assert.match(err.message, /^exp\.yaml:2: train\.optimzer: /);
});

test('config - bad enum value lists every allowed value', () => {
  const err = configError(() => parse('model:\n  precision: binari\n'));
  const msg = err.issues[0]!.message;
  assert.equal(err.issues[0]!.path, 'model.precision');
  for (const p of PRECISIONS) assert.ok(msg.includes(p), `${msg} lists ${p}`);
  assert.match(msg, /got "binari"/);
});

test('config - out-of-range numbers state the range and the value', () => {
  const err = configError(() => parse('dataset: {subset: 1.5}\ntrain:\n  optimizer: {lr: -1}\n  epochs: 0\n'));
  const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
  assert.equal(byPath.get('dataset.subset'), 'must be a number in (0, 1], got 1.5');
  assert.equal(byPath.get('train.optimizer.lr'), 'must be a number > 0, got -1');
  assert.equal(byPath.get('train.epochs'), 'must be an integer >= 1, got 0');
});

test('config - wrong types name the expected type', () => {
  const err = configError(() => parse('seed: 1.5\ntags: nope\nmodel: {batchNorm: "yes"}\ndataset: {synthetic: {shape: [8, 8]}}\n'));
  const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
  assert.equal(byPath.get('seed'), 'must be an integer >= 0, got 1.5');
  assert.match(byPath.get('tags')!, /must be a list of items, each a non-empty string, got "nope"/);
  assert.equal(byPath.get('model.batchNorm'), 'must be true or false, got "yes"');
  assert.match(byPath.get('dataset.synthetic.shape')!, /exactly 3 items.*got \[8,8\]/);
});

test('config - every problem is reported at once, in file order, with the file name', () => {
  const err = configError(() => parse('seed: -1\nextra: 1\nmodel:\n  arch: lenet\n  hidden: [512, 0]\nengine: {threads: -2}\n'));
  assert.deepEqual(
    err.issues.map((i) => [i.path, i.line]),
    [
      ['seed', 1],
      ['extra', 2],
      ['model.arch', 4],
      ['model.hidden.1', 5],
      ['engine.threads', 6],
    ],
  );
  assert.equal(err.exitCode, 1);
  for (const line of err.message.split('\n')) assert.match(line, /^exp\.yaml:\d+: /);
});

test('config - a document that is not a mapping is rejected', () => {
  const err = configError(() => parse('- 1\n- 2\n'));
  assert.match(err.message, /the config must be a mapping with keys name, tags, seed/);
});

test('config - YAML syntax errors and duplicate keys give the line', () => {
  const err = configError(() => parse('seed: 1\nseed: 2\n'));
  assert.match(err.message, /^exp\.yaml:2: invalid YAML/);
  const bad = configError(() => parse('train: [1, 2\n'));
  assert.match(bad.message, /invalid YAML/);
});

test('config - loadConfig defaults the name to the file stem and names the file in errors', async (t) => {
  const dir = await tmpDir({ t });
  const good = dir.join('fmnist-mlp.yaml');
  await writeFile(good, 'seed: 7\n');
  const config = await loadConfig(good);
  assert.equal(config.name, 'fmnist-mlp');
  assert.equal(config.seed, 7);

  const named = dir.join('other.yml');
  await writeFile(named, 'name: explicit\n');
  assert.equal((await loadConfig(named)).name, 'explicit');

  const bad = dir.join('bad.yaml');
  await writeFile(bad, 'train: {epochs: -3}\n');
  await assert.rejects(loadConfig(bad), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.ok(err.message.startsWith(`${bad}:1: train.epochs: `), err.message);
    return true;
  });
  await assert.rejects(loadConfig(dir.join('missing.yaml')), /missing\.yaml: cannot read config file: no such file/);
});

test('config - hash is stable under key order and changes with any value', () => {
  const a = defaultRunConfig();
  const reordered = Object.fromEntries(Object.entries(a).reverse()) as typeof a;
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(a));
  assert.equal(configHash(a), configHash(reordered));
  assert.match(configHash(a), /^[0-9a-f]{64}$/);
  const b = defaultRunConfig();
  b.train.optimizer.epsilon = 1e-8;
  assert.notEqual(configHash(a), configHash(b));
  assert.equal(stableStringify({ b: 1, a: [2, { d: 3, c: undefined }] }), '{"a":[2,{"d":3}],"b":1}');
});

test('config - sameExperiment: a checkpoint hash matches its config whatever the wire format, and nothing else', () => {
  const a = defaultRunConfig();
  const signEf = { ...a, train: { ...a.train, compression: 'sign-ef' as const } };
  assert.ok(sameExperiment(configHash(a), a));
  assert.ok(sameExperiment(configHash(a), signEf), 'a resume may change train.compression');
  assert.ok(sameExperiment(configHash(signEf), a));
  const other = { ...a, seed: a.seed + 1 };
  assert.ok(!sameExperiment(configHash(a), other));
  assert.ok(!sameExperiment('0'.repeat(64), a));
});
