import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createCoordinatorServer } from '../coordinator/index.js';
import { connectNatsTransport, NatsAuthError, natsUrlWithAuth } from '../src/collective/index.js';
import { loadConfig } from '../src/config/index.js';
import { connectCoordinator } from '../src/rpc/index.js';
import { openStore } from '../src/store/index.js';
import { makeTestCerts } from './helpers/certs.js';
import { CLI_ENTRY, REPO_ROOT } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** An in-process coordinator handing `natsUrl` to its workers, a client, and `bnn worker` processes against it. */
async function cluster(t: AfterHook, natsUrl: string) {
  const store = openStore(':memory:');
  const logs: string[] = [];
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options: { natsUrl }, log: (l) => logs.push(l) });
  const port = await server.listen('127.0.0.1', 0);
  const client = connectCoordinator(`127.0.0.1:${port}`, { token: 'tok', callTimeoutMs: 5000 });
  t.after(async () => {
    client.close();
    await server.shutdown(200);
    store.close();
  });
  const worker = (args: string[], env: Record<string, string> = {}) => {
    const child = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--once', '--coordinator', `127.0.0.1:${port}`, '--threads', '1', '--backend', 'cpu', ...args],
      { env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok', ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  };
  const run = async (dir: string) => {
    const config = await loadConfig(writeTinyConfig(dir, { epochs: 1 }));
    return (await client.submitRun({ config_json: JSON.stringify(config), workers: 1 })).run_id;
  };
  const ended = async (runId: string, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await client.getRun({ run_id: runId });
      if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(info.status)) return info;
      if (Date.now() > deadline) assert.fail(`run ${runId} still ${info.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  return { store, logs, worker, run, ended };
}

test('nats auth - a worker with the right user/password trains; a wrong password fails the run with a clear error that shows no password', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t, user: 'bnn', password: 'right-pw-123' });
  const c = await cluster(t, nats.url);

  const good = c.worker(['--nats-user', 'bnn'], { BNN_NATS_PASS: 'right-pw-123' });
  const ok = await c.ended(await c.run(dir.path));
  const goodExit = await good;
  assert.equal(ok.status, 'COMPLETED', `${ok.error}\n${goodExit.stderr}`);
  assert.equal(goodExit.code, 0, goodExit.stderr);

  const bad = c.worker(['--nats-user', 'bnn', '--nats-pass', 'wrong-pw-456']);
  const failed = await c.ended(await c.run(dir.path));
  const badExit = await bad;
  assert.equal(failed.status, 'FAILED');
  assert.match(failed.error, /refused the user\/password of user 'bnn'.*--nats-user\/--nats-pass/);
  assert.equal(badExit.code, 1, badExit.stderr);
  assert.match(badExit.stderr, /refused the user\/password of user 'bnn'/);
  for (const text of [failed.error, badExit.stderr, goodExit.stderr, c.logs.join('\n')]) {
    assert.ok(!text.includes('wrong-pw-456') && !text.includes('right-pw-123'), `a password leaked:\n${text}`);
  }
  const stored =
    JSON.stringify(c.store.sqlite.prepare('SELECT * FROM runs').all()) +
    JSON.stringify(c.store.sqlite.prepare('SELECT * FROM events').all());
  assert.ok(!stored.includes('pw-'), 'no password in the runs or events tables');
});

test('nats auth - a token handed out by the coordinator in its nats url reaches the workers; a worker --nats-token overrides it and a wrong one is refused', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t, token: 'tok-abc-789' });
  const c = await cluster(t, natsUrlWithAuth(nats.url, { token: 'tok-abc-789' }));

  const good = c.worker([]);
  const ok = await c.ended(await c.run(dir.path));
  assert.equal(ok.status, 'COMPLETED', `${ok.error}\n${(await good).stderr}`);
  assert.equal((await good).code, 0);

  const bad = c.worker(['--nats-token', 'not-the-token']);
  const failed = await c.ended(await c.run(dir.path));
  const badExit = await bad;
  assert.equal(failed.status, 'FAILED');
  assert.match(failed.error, /refused the token/);
  assert.equal(badExit.code, 1, badExit.stderr);
  for (const text of [failed.error, badExit.stderr, c.logs.join('\n')])
    assert.ok(!text.includes('tok-abc-789') && !text.includes('not-the-token'), text);
});

test('nats auth - TLS: a client with the CA and a CA-signed certificate connects to a nats-server that verifies clients; no certificate or an untrusted CA fails naming the TLS flags', async (t) => {
  const dir = await tmpDir({ t });
  const c = makeTestCerts(dir.path);
  const nats = await startTestNatsServer({ t, tls: { certFile: c.serverCert, keyFile: c.serverKey, caFile: c.ca } });
  const transport = await connectNatsTransport({ servers: nats.url, tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } });
  await transport.flush();
  await transport.close();
  for (const tls of [{ caFile: c.ca }, { caFile: c.otherCa, certFile: c.clientCert, keyFile: c.clientKey }, undefined]) {
    const err = await connectNatsTransport({ servers: nats.url, connectTimeoutMs: 3000, ...(tls ? { tls } : {}) }).then(
      (tr) => {
        void tr.close();
        return null;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof NatsAuthError, `${JSON.stringify(tls)}: ${String(err)}`);
    assert.match(err.message, /TLS failed .*--nats-tls-ca\/--nats-tls-cert\/--nats-tls-key/);
  }
});
