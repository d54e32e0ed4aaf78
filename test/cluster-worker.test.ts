import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { createCoordinatorServer } from '../coordinator/index.js';
import { connectCoordinator } from '../src/rpc/index.js';
import { listMembers, openStore } from '../src/store/index.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';
import { CLI_ENTRY, REPO_ROOT } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { loadConfig } from '../src/config/index.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

test('cluster worker - standalone workers train the assigned ranks and exit 0 promptly when the run is cancelled', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t });
  const store = openStore(':memory:');
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options: { natsUrl: nats.url } });
  const port = await server.listen('127.0.0.1', 0);
  const client = connectCoordinator(`127.0.0.1:${port}`, { token: 'tok' });
  t.after(async () => {
    client.close();
    await server.shutdown(200);
    store.close();
  });
  const exits = [0, 1].map(() => {
    const child = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--once', '--coordinator', `127.0.0.1:${port}`, '--threads', '1', '--backend', 'cpu'],
      { env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return new Promise<{ code: number | null; stderr: string; at: number }>((resolve) =>
      child.on('close', (code) => resolve({ code, stderr, at: Date.now() })),
    );
  });
  const config = await loadConfig(writeTinyConfig(dir.path, { epochs: 200 }));
  const watch = client.watchCluster({ run_id: '' });
  const { run_id: runId } = await client.submitRun({ config_json: JSON.stringify(config), workers: 2 });
  for await (const ev of watch) if (ev.run_id === runId && ev.kind === 'epoch') break;
  watch.cancel();
  const running = await client.getRun({ run_id: runId });
  assert.deepEqual([running.status, running.generation, running.world_size], ['RUNNING', 1, 2]);
  assert.deepEqual(
    listMembers(store.db, runId).map((m) => m.rank),
    [0, 1],
  );
  const cancelledAt = Date.now();
  assert.equal((await client.cancelRun({ run_id: runId })).status, 'CANCELLED');
  for (const e of await Promise.all(exits)) {
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stderr, /stopped by the coordinator/);
    assert.ok(e.at - cancelledAt < 10_000, `a worker took ${e.at - cancelledAt} ms to stop`);
  }
});
