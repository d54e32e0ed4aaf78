import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { parseRunConfig } from '../src/config/index.js';
import { listEvents, openStore } from '../src/store/index.js';

test('compression config - train.compression defaults to none and rejects unknown formats naming the allowed ones', () => {
  assert.equal(parseRunConfig({}, { source: 'test' }).train.compression, 'none');
  assert.equal(parseRunConfig({ train: { compression: 'sign-ef' } }, { source: 'test' }).train.compression, 'sign-ef');
  assert.throws(
    () => parseRunConfig({ train: { compression: 'int4' } }, { source: 'test' }),
    /train\.compression[\s\S]*none[\s\S]*fp16[\s\S]*sign-ef/,
  );
});

test('compression config - bnn launch takes train.compression from the config; --compression overrides it', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, { epochs: 1 });
  const fromConfig = await runCli(['launch', '--local', '2', config, '--set', 'train.compression=sign-ef', '--json', '--quiet'], {
    cwd: dir.path,
    timeoutMs: 60_000,
  });
  assert.equal(fromConfig.code, 0, fromConfig.stderr);
  const flag = await runCli(
    ['launch', '--local', '1', config, '--set', 'train.compression=sign-ef', '--compression', 'fp16', '--json', '--quiet'],
    { cwd: dir.path, timeoutMs: 60_000 },
  );
  assert.equal(flag.code, 0, flag.stderr);
  const store = openStore(dir.join('bnn.db'));
  try {
    const submitted = (out: string) => {
      const { runId } = JSON.parse(out.trim()) as { runId: string };
      const ev = listEvents(store.db, runId).find((e) => e.kind === 'submitted');
      const row = store.sqlite.prepare('SELECT status, config FROM runs WHERE id = ?').get(runId) as { status: string; config: string };
      assert.equal(row.status, 'COMPLETED');
      // the run config is the one place the wire format is recorded; the event keeps what the config does not say
      return { event: ev?.detail, configured: (JSON.parse(row.config) as { train: { compression: string } }).train.compression };
    };
    assert.deepEqual(submitted(fromConfig.stdout), { event: { workers: 2 }, configured: 'sign-ef' });
    assert.deepEqual(submitted(flag.stdout), { event: { workers: 1 }, configured: 'fp16' });
  } finally {
    store.close();
  }
});

test('compression config - a bad --compression is bad usage naming the formats', async (t) => {
  const dir = await tmpDir({ t });
  const r = await runCli(['launch', '--local', '1', writeTinyConfig(dir.path), '--compression', 'int4'], { cwd: dir.path });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--compression: 'int4' is not valid; expected one of none, fp16, sign-ef/);
});
