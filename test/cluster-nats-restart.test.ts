import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { listEvents } from '../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT, runCli } from './helpers/cli.js';
import { readWeights, writeTinyConfig } from './helpers/cluster.js';
import { startTestCoordinator } from './helpers/coordinator.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

test('cluster nats restart - nats-server killed and restarted mid-run: the step in flight fails, is redone after reconnecting, and the weights end bit-identical to an undisturbed run', async (t) => {
  const dir = await tmpDir({ t });
  // A scale-sensitive Adam (epsilon 1): a step that used a partial gradient would change the weights.
  const config = writeTinyConfig(dir.path, { optimizerEpsilon: 1, epochs: 6 });
  const calm = await runCli(['launch', '--local', '2', config, '--quiet'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('calm') },
  });
  assert.equal(calm.code, 0, calm.stderr);

  let nats = await startTestNatsServer();
  const port = nats.port;
  t.after(() => nats.stop());
  const { store, address, client } = await startTestCoordinator(t, dir.join('restart.db'), { natsUrl: nats.url });
  const exits = [0, 1].map(() => {
    const child = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--once', '--coordinator', address, '--threads', '1', '--backend', 'cpu'],
      {
        env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok', BNN_WORKER_DUMP_WEIGHTS: dir.join('restarted') },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  });

  const watch = client.watchCluster({ run_id: '' });
  const { run_id: runId } = await client.submitRun({ config_json: JSON.stringify(await loadConfig(config)), workers: 2 });
  let restarted = false;
  let status = '';
  for await (const ev of watch) {
    if (ev.run_id !== runId) continue;
    const d = JSON.parse(ev.detail_json) as { epoch?: number; status?: string };
    if (ev.kind === 'epoch' && d.epoch === 2 && !restarted) {
      restarted = true;
      await nats.stop();
      nats = await startTestNatsServer({ port });
    }
    if (ev.kind === 'run' && (d.status === 'COMPLETED' || d.status === 'FAILED')) {
      status = d.status;
      break;
    }
  }
  watch.cancel();
  const workers = await Promise.all(exits);
  assert.equal(status, 'COMPLETED', workers.map((w) => w.stderr).join('\n'));
  for (const w of workers) assert.equal(w.code, 0, w.stderr);
  assert.ok(
    workers.some((w) => /re-forming the group/.test(w.stderr)),
    'a rank abandoned its step',
  );

  const events = listEvents(store.db, runId);
  const failed = events.filter((e) => e.kind === 'collective-failed');
  // the connection closing ends the all-reduce's subscriptions: a TransportClosedError
  assert.ok(
    failed.some((e) => /NATS connection closed|subscription \S+ ended|transport closed/i.test(String(e.detail!.error))),
    JSON.stringify(failed.map((e) => e.detail)),
  );
  assert.ok(
    events.some((e) => e.kind === 'generation'),
    events.map((e) => e.kind).join(' '),
  );

  const calmW = readWeights(dir.join('calm'));
  const w = readWeights(dir.join('restarted'));
  assert.equal(w.steps, 60);
  assert.deepEqual(w.params, calmW.params, 'weights differ from the undisturbed run');
});
