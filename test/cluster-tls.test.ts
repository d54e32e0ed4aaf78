import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/index.js';
import {
  loadClientTls,
  loadServerTls,
  RpcUnavailableError,
  TlsConfigError,
  type ClientTls,
  type CoordinatorClient,
  type ServerTls,
} from '../src/rpc/index.js';
import { makeTestCerts, type TestCerts } from './helpers/certs.js';
import { CLI_ENTRY, REPO_ROOT, runCli } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { rejection, startLoggedCoordinator } from './helpers/coordinator.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** An in-process coordinator on 127.0.0.1 serving `tls` (plaintext when null). */
async function coordinator(t: AfterHook, tls: ServerTls | null, natsUrl = 'nats://127.0.0.1:4222') {
  const { port, connect, logs } = await startLoggedCoordinator(t, { token: 'tok', options: { natsUrl }, tls });
  const client = (clientTls: ClientTls | null, address?: string) =>
    connect({ token: 'tok', ...(clientTls ? { tls: clientTls } : {}) }, address);
  return { port, client, logs };
}

async function untilEnded(c: CoordinatorClient, runId: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await c.getRun({ run_id: runId });
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(info.status)) return info.error ? `${info.status}: ${info.error}` : info.status;
    if (Date.now() > deadline) return `still ${info.status} after ${timeoutMs} ms`;
    await new Promise((r) => setTimeout(r, 200));
  }
}

let certs: TestCerts | null = null;
async function testCerts(): Promise<TestCerts> {
  if (!certs) {
    const dir = await tmpDir({ prefix: 'bnn-certs-' });
    process.once('exit', () => void dir.cleanup());
    certs = makeTestCerts(dir.path);
  }
  return certs;
}

test('cluster tls - a run over TLS completes: bnn worker verifies the coordinator with --tls-ca and --tls-server-name', async (t) => {
  const c = await testCerts();
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t });
  const { port, client } = await coordinator(t, loadServerTls({ certFile: c.serverCert, keyFile: c.serverKey }), nats.url);
  // Dialled by IP, verified against the certificate's DNS name.
  const worker = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      CLI_ENTRY,
      'worker',
      '--once',
      '--coordinator',
      `127.0.0.1:${port}`,
      '--threads',
      '1',
      '--backend',
      'cpu',
      '--tls-ca',
      c.ca,
      '--tls-server-name',
      'localhost',
    ],
    { env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  worker.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.after(() => {
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => worker.on('close', resolve));
  const admin = client(loadClientTls({ caFile: c.ca }));
  const config = await loadConfig(writeTinyConfig(dir.path, { epochs: 1 }));
  const { run_id: runId } = await admin.submitRun({ config_json: JSON.stringify(config), workers: 1 });
  assert.equal(await untilEnded(admin, runId, 90_000), 'COMPLETED', stderr);
  assert.equal(await exited, 0, stderr);
});

test('cluster tls - mutual TLS refuses clients without a certificate, with one from another CA, and those that do not trust the CA; plaintext gets a clear error', async (t) => {
  const c = await testCerts();
  const { client, port } = await coordinator(t, loadServerTls({ certFile: c.serverCert, keyFile: c.serverKey, caFile: c.ca }));

  const good = client(loadClientTls({ caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey }));
  const notFound = await rejection(good.getRun({ run_id: 'r-none' }));
  assert.match(notFound.message, /NOT_FOUND/, 'a client with a CA-signed certificate reaches the handlers');

  const noCert = await rejection(client(loadClientTls({ caFile: c.ca })).getRun({ run_id: 'r-none' }));
  assert.ok(noCert instanceof RpcUnavailableError, String(noCert));
  assert.match(noCert.message, /requires a client certificate.*--tls-cert and --tls-key/);

  const rogue = await rejection(
    client(loadClientTls({ caFile: c.ca, certFile: c.otherClientCert, keyFile: c.otherClientKey })).register({ hostname: 'h' }),
  );
  assert.ok(rogue instanceof RpcUnavailableError, String(rogue));

  const distrust = await rejection(
    client(loadClientTls({ caFile: c.otherCa, certFile: c.clientCert, keyFile: c.clientKey })).getRun({ run_id: 'r' }),
  );
  assert.ok(distrust instanceof RpcUnavailableError, String(distrust));
  assert.match(distrust.message, /certificate is not trusted: check --tls-ca/);

  const stream = client(loadClientTls({ caFile: c.ca })).watchCluster({ run_id: '' });
  const streamErr = await rejection(
    (async () => {
      for await (const _ of stream) {
        /* none */
      }
    })(),
  );
  assert.ok(streamErr instanceof RpcUnavailableError, `server streams are refused too: ${String(streamErr)}`);

  const plain = await rejection(client(null).getRun({ run_id: 'r' }));
  assert.match(plain.message, /serves TLS but this client connected in plaintext: pass --tls-ca/);
  const plainWait = await rejection(client(null).waitForReady(5000));
  assert.match(plainWait.message, /serves TLS but this client connected in plaintext/);

  // The CLI worker without a client certificate exits 1 with the reason.
  const r = await runCli(
    ['worker', '--once', '--coordinator', `127.0.0.1:${port}`, '--token', 'tok', '--tls-ca', c.ca, '--connect-timeout-ms', '5000'],
    { timeoutMs: 30_000 },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /requires a client certificate/);
});

test('cluster tls - a TLS client of a plaintext coordinator is told the coordinator does not speak TLS', async (t) => {
  const c = await testCerts();
  const { client } = await coordinator(t, null);
  const err = await rejection(client(loadClientTls({ caFile: c.ca })).getRun({ run_id: 'r' }));
  assert.ok(err instanceof RpcUnavailableError, String(err));
  assert.match(err.message, /does not speak TLS/);
});

test('cluster tls - missing, directory, non-PEM and mismatched certificate files are named in the error', async (t) => {
  const c = await testCerts();
  const dir = await tmpDir({ t });
  const cases: Array<[() => unknown, RegExp]> = [
    [() => loadServerTls({ certFile: dir.join('nope.pem'), keyFile: c.serverKey }), /--tls-cert .*nope\.pem does not exist/],
    [
      () => loadServerTls({ certFile: c.serverCert, keyFile: c.clientKey }),
      /--tls-key .*worker\.key does not match the certificate in --tls-cert .*server\.pem/,
    ],
    [() => loadServerTls({ certFile: c.serverKey, keyFile: c.serverKey }), /--tls-cert .*server\.key does not hold a PEM certificate/],
    [() => loadServerTls({ certFile: c.serverCert, keyFile: c.serverKey, caFile: dir.path }), /--tls-ca .* is a directory/],
    [() => loadClientTls({ caFile: c.ca, certFile: c.clientCert }), /--tls-cert needs --tls-key/],
    [() => loadClientTls({ caFile: c.serverCert.replace(/\.pem$/, '.ext') }), /--tls-ca .*server\.ext is not a PEM file/],
  ];
  for (const [fn, re] of cases) {
    assert.throws(fn, (err: unknown) => err instanceof TlsConfigError && re.test(err.message), String(re));
  }
  const r = await runCli(['coordinator', '--token', 'x', '--port', '0', '--tls-cert', c.serverCert, '--tls-key', c.clientKey], {
    cwd: dir.path,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--tls-key .*worker\.key does not match the certificate in --tls-cert/);
});
