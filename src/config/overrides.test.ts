import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from './errors.js';
import { applyOverrides, NAMED_OVERRIDES, type ConfigOverrides } from './overrides.js';
import { defaultRunConfig } from './schema.js';

function overrideError(overrides: ConfigOverrides): ConfigError {
  try {
    applyOverrides(defaultRunConfig(), overrides);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('overrides - every named flag sets its field from flag text', () => {
  const config = applyOverrides(defaultRunConfig(), {
    epochs: '3',
    batchSize: '64',
    subset: '0.25',
    seed: '5',
    precision: 'xnor',
    threads: '2',
    backend: 'wasm',
    lr: '2e-3',
    binaryLr: '0.05',
    arch: 'vgg-small',
    dataset: 'cifar10',
    name: '007',
    store: '/tmp/x.db',
    checkpointDir: 'ckpt',
  });
  assert.equal(config.train.epochs, 3);
  assert.equal(config.train.batchSize, 64);
  assert.equal(config.dataset.subset, 0.25);
  assert.equal(config.seed, 5);
  assert.equal(config.model.precision, 'xnor');
  assert.equal(config.engine.threads, 2);
  assert.equal(config.engine.backend, 'wasm');
  assert.equal(config.train.optimizer.lr, 0.002);
  assert.equal(config.train.optimizer.binaryLr, 0.05);
  assert.equal(config.model.arch, 'vgg-small');
  assert.equal(config.dataset.name, 'cifar10');
  assert.equal(config.name, '007', 'a string field keeps the flag text');
  assert.equal(config.store, '/tmp/x.db');
  assert.equal(config.checkpointDir, 'ckpt');
  assert.equal(NAMED_OVERRIDES.length, 14);
});

test('overrides - --set reaches any field, parses YAML values, later wins', () => {
  const base = defaultRunConfig();
  const config = applyOverrides(base, {
    set: [
      'train.schedule.name=constant',
      'train.schedule.warmRestarts=true',
      'model.hidden=[512, 256]',
      'model.hidden.1=128',
      'dataset.dir=/data',
      'dataset.synthetic={trainSize: 10}',
      'tags=[a, b]',
      'train.latentClip=0',
      'train.latentClip=0.5',
    ],
  });
  assert.equal(config.train.schedule.name, 'constant');
  assert.equal(config.train.schedule.warmRestarts, true);
  assert.deepEqual(config.model.hidden, [512, 128]);
  assert.equal(config.dataset.dir, '/data');
  assert.deepEqual(config.dataset.synthetic, { trainSize: 10, testSize: 500, shape: [8, 8, 1], numClasses: 4 });
  assert.deepEqual(config.tags, ['a', 'b']);
  assert.equal(config.train.latentClip, 0.5);
  assert.deepEqual(base, defaultRunConfig(), 'the input config is not modified');
  assert.equal(applyOverrides(config, { set: ['dataset.dir=null'] }).dataset.dir, null);
});

test('overrides - unknown --set path lists the valid keys at that level', () => {
  const err = overrideError({ set: ['train.optimzer.lr=0.1'] });
  assert.equal(err.exitCode, 2);
  assert.equal(err.issues.length, 1);
  const issue = err.issues[0]!;
  assert.equal(issue.source, '--set');
  assert.equal(issue.value, 'train.optimzer.lr=0.1');
  assert.match(err.message, /^--set: 'train\.optimzer\.lr=0\.1' is not valid; unknown key "optimzer"/);
  assert.match(issue.message, /unknown key "optimzer" \(did you mean "optimizer"\?\)/);
  assert.match(issue.message, /valid keys in train: epochs, batchSize, optimizer, schedule, latentClip/);

  const top = overrideError({ set: ['learningRate=1'] });
  assert.match(top.message, /valid keys in the top level: name, tags, seed, dataset, model, train, engine/);
  const leaf = overrideError({ set: ['seed.value=1'] });
  assert.match(leaf.message, /seed is an integer >= 0 and has no field "value"/);
});

test('overrides - bad values name the flag, its text, the field and the allowed values, worded as every bad flag value; all reported', () => {
  const err = overrideError({ epochs: 'abc', precision: 'binari', set: ['model.bnMomentum=1', 'nonsense'] });
  const lines = err.message.split('\n');
  assert.equal(lines.length, 4, err.message);
  assert.ok(lines.includes("--set: 'nonsense' is not valid; expected path=value, e.g. train.optimizer.lr=0.01"), err.message);
  assert.ok(lines.includes("--epochs: 'abc' is not valid; expected train.epochs to be an integer >= 1"), err.message);
  assert.ok(
    lines.includes(
      `--precision: 'binari' is not valid; expected model.precision to be one of fp32, int8, binary, binary-weights, xnor, rsign (did you mean "binary"?)`,
    ),
    err.message,
  );
  assert.ok(lines.includes("--set: 'model.bnMomentum=1' is not valid; expected model.bnMomentum to be a number in [0, 1)"), err.message);
  assert.deepEqual(
    err.issues.find((i) => i.source === '--epochs'),
    { path: 'train.epochs', message: 'expected train.epochs to be an integer >= 1', source: '--epochs', value: 'abc' },
  );
});

test('overrides - a field set by both a named flag and --set is an error', () => {
  const err = overrideError({ epochs: '3', set: ['train.epochs=4'] });
  assert.match(err.message, /^--set: 'train\.epochs=4' is not valid; train\.epochs is also set by --epochs; give it once$/);
});
