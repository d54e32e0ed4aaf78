import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { openStore } from '../src/store/index.js';
import { makeTestCerts } from './helpers/certs.js';
import { CLI_ENTRY, runCli } from './helpers/cli.js';
import { spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './helpers/cli.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const NATS_TOKEN = 'nats-tok-5150';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

function bnn(
  args: string[],
  env: Record<string, string>,
  t: AfterHook,
): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => stderr, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

test('cluster remote - launch --coordinator over mutual TLS: a run completes (exit 0), a run whose worker NATS refuses fails (exit 1), Ctrl-C cancels (exit 130)', async (t) => {
  const dir = await tmpDir({ t });
  const c = makeTestCerts(dir.path);
  const nats = await startTestNatsServer({ t, token: NATS_TOKEN });
  const store = dir.join('cluster.db');
  const env = { BNN_CLUSTER_TOKEN: 'cluster-tok', NO_COLOR: '1' };
  const clientTls = ['--tls-ca', c.ca, '--tls-cert', c.clientCert, '--tls-key', c.clientKey];

  // The NATS token reaches the coordinator by env and the workers with their assignments.
  const coord = bnn(
    [
      'coordinator',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--store',
      store,
      '--nats',
      nats.url,
      '--tls-cert',
      c.serverCert,
      '--tls-key',
      c.serverKey,
      '--tls-ca',
      c.ca,
      '--heartbeat-ms',
      '200',
      '--http-port',
      '0',
    ],
    { ...env, BNN_NATS_TOKEN: NATS_TOKEN },
    t,
  );
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: coord.child.stdout! }).on('line', (l) => {
      const m = /"listening":\s*(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    void coord.exited.then(() => reject(new Error(`coordinator exited:\n${coord.stderr()}`)));
  });
  const address = `127.0.0.1:${port}`;
  const worker = (extra: string[] = []) =>
    bnn(['worker', '--once', '--coordinator', address, '--threads', '1', '--backend', 'cpu', ...clientTls, ...extra], env, t);

  // 1. Completes: two workers, exit 0, the same JSON shape as --local.
  const workers = [worker(), worker()];
  const config = writeTinyConfig(dir.path);
  const ok = await runCli(['launch', '--coordinator', address, '--workers', '2', config, ...clientTls, '--json'], {
    cwd: dir.path,
    env,
    timeoutMs: 90_000,
  });
  assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}\n${coord.stderr()}`);
  const out = JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as {
    runId: string;
    status: string;
    epochs: Array<{ epoch: number }>;
    workers: number;
  };
  assert.equal(out.status, 'COMPLETED');
  assert.deepEqual(
    out.epochs.map((e) => e.epoch),
    [1, 2],
  );
  for (const w of workers) assert.equal(await w.exited, 0, w.stderr());

  // 2. Fails: the only worker's own --nats-token overrides the coordinator's and is refused.
  const bad = worker(['--nats-token', 'wrong-token']);
  const failed = await runCli(['launch', '--coordinator', address, '--workers', '1', config, ...clientTls, '--quiet'], {
    cwd: dir.path,
    env,
    timeoutMs: 90_000,
  });
  assert.equal(failed.code, 1, `${failed.stdout}\n${failed.stderr}`);
  assert.equal(await bad.exited, 1);

  // 3. Ctrl-C: the launcher cancels the run and exits 130 once it is CANCELLED; the worker is stopped.
  const slow = worker();
  const launch = spawnCli(
    ['launch', '--coordinator', address, '--workers', '1', writeTinyConfig(dir.path, { epochs: 500 }), ...clientTls],
    { cwd: dir.path, env, t },
  );
  await launch.waitForLine(/^epoch 1\/500/, 60_000);
  process.kill(-launch.child.pid!, 'SIGINT');
  const cancelled = await launch.exited;
  assert.equal(cancelled.code, 130, cancelled.stderr);
  assert.match(cancelled.stderr, /cancelling run/);
  assert.match(cancelled.stdout, /CANCELLED/);
  assert.equal(await slow.exited, 0, slow.stderr());

  // A plaintext launcher is told the coordinator wants TLS.
  const plain = await runCli(['launch', '--coordinator', address, '--workers', '1', config], { cwd: dir.path, env, timeoutMs: 30_000 });
  assert.equal(plain.code, 1, plain.stderr);
  assert.match(plain.stderr, /serves TLS but this client connected in plaintext/);

  coord.child.kill('SIGTERM');
  assert.equal(await coord.exited, 0, coord.stderr());
  const db = openStore(store);
  try {
    const rows = db.sqlite.prepare('SELECT id, status FROM runs ORDER BY created_at').all() as Array<{ id: string; status: string }>;
    assert.deepEqual(
      rows.map((r) => r.status),
      ['COMPLETED', 'FAILED', 'CANCELLED'],
    );
    assert.equal(rows[0]!.id, out.runId);
  } finally {
    db.close();
  }
  // The NATS token is in neither the coordinator's log nor the experiment database.
  assert.ok(!coord.stderr().includes(NATS_TOKEN), coord.stderr());
  assert.match(coord.stderr(), /mutual TLS/);
  assert.ok(!readFileSync(store).includes(NATS_TOKEN), 'the NATS token was stored');
});

test('cluster remote - launch --coordinator without --workers, or with --local too, is bad usage', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path);
  const noWorkers = await runCli(['launch', '--coordinator', '127.0.0.1:1', config, '--token', 'x'], { cwd: dir.path });
  assert.equal(noWorkers.code, 2);
  assert.match(noWorkers.stderr, /--workers <n>/);
  const both = await runCli(['launch', '--coordinator', '127.0.0.1:1', '--local', '1', config], { cwd: dir.path });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either --local <n> .* or --coordinator/);
});
