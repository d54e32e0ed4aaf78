import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { natsUrlWithAuth } from '../src/collective/nats-url.js';
import { loadConfig } from '../src/config/index.js';
import { listEvents } from '../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT, runCli } from './helpers/cli.js';
import { readWeights, writeTinyConfig } from './helpers/cluster.js';
import { startTestCoordinator } from './helpers/coordinator.js';
import { startTestNatsCluster, type TestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

test('cluster nats cluster - 3 nats-servers, workers given the seed list; the server a worker is connected to is stopped mid-run: it moves to another, the group re-forms and the run completes', async (t) => {
  const dir = await tmpDir({ t });
  // A scale-sensitive Adam (epsilon 1): a redone step that used a partial gradient would change the weights.
  const config = writeTinyConfig(dir.path, { optimizerEpsilon: 1, epochs: 6 });
  const calm = await runCli(['launch', '--local', '2', config, '--quiet'], {
    cwd: dir.path,
    timeoutMs: 40_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('calm') },
  });
  assert.equal(calm.code, 0, calm.stderr);
  // client credentials on every node: the coordinator embeds them in each url of the list it hands out
  const creds = { user: 'bnn', password: 'cluster-pass' };
  const nats = await startTestNatsCluster(3, { t, ...creds });
  const { store, address, client } = await startTestCoordinator(t, dir.join('cluster.db'), {
    natsUrl: natsUrlWithAuth(nats.seedList, creds),
  });
  // worker 0 takes the list from its assignment; worker 1 from its own --nats flag (and credentials from the environment)
  const flags = [[], ['--nats', nats.seedList]];
  const workerEnv = [{}, { BNN_NATS_USER: creds.user, BNN_NATS_PASS: creds.password }];
  const exits = [0, 1].map((i) => {
    const child = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--once', '--coordinator', address, '--threads', '1', '--backend', 'cpu', ...flags[i]!],
      {
        env: { ...process.env, ...workerEnv[i], BNN_CLUSTER_TOKEN: 'tok', BNN_WORKER_DUMP_WEIGHTS: dir.join('weights') },
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
  let killed: { server: TestNatsServer; names: string[]; at: number } | null = null;
  let reformedAfterMs: number | null = null;
  let status = '';
  for await (const ev of watch) {
    if (ev.run_id !== runId) continue;
    const d = JSON.parse(ev.detail_json) as { epoch?: number; status?: string; generation?: number };
    if (ev.kind === 'epoch' && d.epoch === 2 && !killed) {
      // the server holding a worker's data-plane connection (named <worker id>-g<generation>)
      for (const s of nats.servers) {
        const names = (await s.connectionNames()).filter((n) => /-g\d+$/.test(n));
        if (names.length > 0) {
          killed = { server: s, names, at: Date.now() };
          await s.stop();
          break;
        }
      }
      assert.ok(killed, 'no server held a worker connection');
    }
    if (ev.kind === 'generation' && killed && reformedAfterMs === null) reformedAfterMs = Date.now() - killed.at;
    if (ev.kind === 'run' && (d.status === 'COMPLETED' || d.status === 'FAILED')) {
      status = d.status;
      break;
    }
  }
  watch.cancel();
  const workers = await Promise.all(exits);
  assert.equal(status, 'COMPLETED', workers.map((w) => w.stderr).join('\n'));
  for (const w of workers) assert.equal(w.code, 0, w.stderr);
  t.diagnostic(`stopped ${killed!.server.serverName} (holding ${killed!.names.join(', ')}); generation event ${reformedAfterMs} ms later`);

  const events = listEvents(store.db, runId);
  assert.ok(
    events.some(
      (e) =>
        e.kind === 'collective-failed' && /NATS connection closed|transport closed|subscription \S+ ended/i.test(String(e.detail!.error)),
    ),
    JSON.stringify(events.filter((e) => e.kind === 'collective-failed').map((e) => e.detail)),
  );
  assert.ok(reformedAfterMs !== null, events.map((e) => e.kind).join(' '));
  // each worker whose server was stopped connected again, to a server still up
  const survivors = nats.servers.filter((s) => s !== killed!.server);
  const movedTo = workers
    .map((w) => [...w.stderr.matchAll(/connected to NATS (\S+) for generation (\d+)/g)])
    .filter((m) => m.length > 1)
    .map((m) => m.at(-1)![1]!);
  assert.ok(movedTo.length >= 1, workers.map((w) => w.stderr).join('\n'));
  // nats.js names the server host:port
  const at = (s: TestNatsServer, where: string) => where.endsWith(`:${s.port}`);
  for (const where of movedTo) assert.ok(survivors.some((s) => at(s, where) && !s.exited) && !at(killed!.server, where), where);
  // credentials were embedded per url and are never logged
  for (const w of workers) assert.ok(!w.stderr.includes(creds.password), 'a NATS password reached a log');

  assert.ok(
    workers.some((w) => /re-forming the group/.test(w.stderr)),
    'a rank abandoned its step',
  );
  const w = readWeights(dir.join('weights'));
  assert.equal(w.steps, 60);
  assert.deepEqual(w.params, readWeights(dir.join('calm')).params, 'weights differ from the undisturbed run');
});
