// Several processes writing one store at once (two `bnn train` runs, a coordinator and a
// CLI): every write waits for the lock instead of failing with "database is locked".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tmpDir } from './helpers/tmp.js';
import { REPO_ROOT } from './helpers/cli.js';

const WRITER = `
import { openStore, createRun, markRunning, finishRun, addEpochMetrics } from './src/store/index.js';
import { defaultRunConfig } from './src/config/index.js';
const store = openStore(process.argv.at(-1));
for (let i = 0; i < 25; i++) {
  const run = createRun(store.db, { config: defaultRunConfig() });
  markRunning(store.db, run.id, { backend: 'cpu', threads: 1 });
  addEpochMetrics(store.db, run.id, { epoch: 1, trainLoss: 1, trainAcc: 0.5, testLoss: 1, testAcc: 0.5, lr: 0.001, samplesPerS: 1, epochTimeS: 1 });
  finishRun(store.db, run.id, 'COMPLETED', { finalTestAcc: 0.5 });
}
store.close();
`;

test('store concurrency - four processes creating and finishing runs on one new file all succeed', async (t) => {
  const dir = await tmpDir({ t });
  const file = dir.join('bnn.db');
  const codes = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<{ code: number | null; err: string }>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WRITER, file], { cwd: REPO_ROOT });
          let err = '';
          child.stderr.on('data', (d) => {
            err += d;
          });
          child.on('close', (code) => resolve({ code, err }));
        }),
    ),
  );
  for (const c of codes) assert.equal(c.code, 0, c.err);
  const { openStore, listRuns } = await import('../src/store/index.js');
  const s = openStore(file, { readonly: true });
  try {
    assert.equal(listRuns(s.db, { limit: 1000 }).filter((r) => r.status === 'COMPLETED').length, 100);
  } finally {
    s.close();
  }
});
