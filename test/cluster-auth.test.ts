import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { createCoordinatorServer } from '../coordinator/index.js';
import { RpcCode, RpcError, RpcUnauthenticatedError } from '../src/rpc/index.js';
import { loadConfig } from '../src/config/index.js';
import { runCli } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { rejection, startLoggedCoordinator } from './helpers/coordinator.js';
import { tmpDir } from './helpers/tmp.js';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** A coordinator (token `s3cret`) and `client(token)` to connect to it; stopped when the test ends. */
async function setup(t: AfterHook, options: Parameters<typeof createCoordinatorServer>[0]['options'] = {}) {
  const { store, server, logs, port, connect } = await startLoggedCoordinator(t, { token: 's3cret', options });
  return { store, server, logs, port, client: (token: string) => connect({ token }) };
}

test('cluster auth - a missing or wrong token is UNAUTHENTICATED on unary, server-stream and client-stream calls, and logged', async (t) => {
  const { client, logs } = await setup(t);
  for (const [label, token] of [
    ['missing', ''],
    ['wrong', 'nope'],
  ] as const) {
    const c = client(token);
    const unary = await rejection(c.getRun({ run_id: 'r-x' }));
    assert.ok(unary instanceof RpcUnauthenticatedError, `${label}: ${String(unary)}`);
    assert.equal((unary as RpcError).code, RpcCode.UNAUTHENTICATED);
    assert.ok((await rejection(c.register({ hostname: 'h' }))) instanceof RpcUnauthenticatedError);
    const watch = c.watchCluster({ run_id: '' });
    const streamed = await rejection(
      (async () => {
        for await (const _ of watch) {
          /* none */
        }
      })(),
    );
    assert.ok(streamed instanceof RpcUnauthenticatedError, `${label} stream: ${String(streamed)}`);
    const hb = c.heartbeat();
    hb.send({ worker_id: 'w' });
    assert.ok((await rejection(hb.end())) instanceof RpcUnauthenticatedError);
    assert.ok(
      logs.some((l) => l.includes(`rejected GetRun`) && l.includes(`${label} cluster token`)),
      logs.join('\n'),
    );
  }
  // The right token passes the check and reaches the handlers.
  const ok = client('s3cret');
  const missing = await rejection(ok.getRun({ run_id: 'r-none' }));
  assert.ok(missing instanceof RpcError && missing.code === RpcCode.NOT_FOUND, String(missing));
  const stranger = await rejection(ok.reportCheckpoint({ run_id: 'r-none' }));
  assert.ok(
    stranger instanceof RpcError && stranger.code === RpcCode.NOT_FOUND && /unknown worker/.test(stranger.message),
    String(stranger),
  );
  const bad = await rejection(ok.submitRun({ config_json: '{"model": {"arch": "nope"}}', workers: 1 }));
  assert.ok(bad instanceof RpcError && bad.code === RpcCode.INVALID_ARGUMENT, String(bad));
});

test('cluster membership - a silent worker turns suspect, then dead, and is then unknown', async (t) => {
  const { client, store } = await setup(t, { heartbeatIntervalMs: 50, suspectAfterMs: 150, deadAfterMs: 400, sweepIntervalMs: 25 });
  const c = client('s3cret');
  const watch = c.watchCluster({ run_id: '' });
  const seen: string[] = [];
  const watching = (async () => {
    for await (const ev of watch) {
      const d = JSON.parse(ev.detail_json) as { state?: string };
      if (ev.kind === 'worker' && d.state) seen.push(d.state);
      if (d.state === 'dead') break;
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  const { worker_id: id } = await c.register({ hostname: 'test-host', threads: 1, backend: 'cpu', pid: 1 });
  await watching;
  watch.cancel();
  assert.deepEqual(seen, ['alive', 'suspect', 'dead']);
  const hb = c.heartbeat();
  hb.send({ worker_id: id });
  const err = await rejection(hb.end());
  assert.ok(err instanceof RpcError && err.code === RpcCode.NOT_FOUND, String(err));
  const dead = store.sqlite.prepare("SELECT count(*) AS n FROM events WHERE kind = 'dead'").get() as { n: number };
  assert.equal(dead.n, 1);
});

test('cluster auth - every RPC refuses a wrong token before its handler runs, and the coordinator logs each refusal; bnn worker is refused too', async (t) => {
  const { client, logs, store, port } = await setup(t);
  const dir = await tmpDir({ t });
  const config = JSON.stringify(await loadConfig(writeTinyConfig(dir.path)));
  const c = client('wrong-token');
  const drain = async (s: AsyncIterable<unknown>) => {
    for await (const _ of s) {
      /* none */
    }
  };
  const hb = () => {
    const h = c.heartbeat();
    h.send({ worker_id: 'w' });
    return h.end();
  };
  const calls: Record<string, () => Promise<unknown>> = {
    Register: () => c.register({ hostname: 'h' }),
    Heartbeat: hb,
    Assignments: () => drain(c.assignments({ worker_id: 'w' })),
    ReportMetrics: () => c.reportMetrics({ worker_id: 'w', run_id: 'r' }),
    ReportCheckpoint: () => c.reportCheckpoint({ run_id: 'r' }),
    SubmitRun: () => c.submitRun({ config_json: config, workers: 1 }),
    ResumeRun: () => c.resumeRun({ run_id: 'r' }),
    CancelRun: () => c.cancelRun({ run_id: 'r' }),
    GetRun: () => c.getRun({ run_id: 'r' }),
    WatchCluster: () => drain(c.watchCluster({ run_id: '' })),
  };
  for (const [method, call] of Object.entries(calls)) {
    const err = await rejection(call());
    assert.ok(err instanceof RpcUnauthenticatedError, `${method}: ${String(err)}`);
    assert.ok(
      logs.some((l) => l.startsWith(`rejected ${method} from `) && l.endsWith('wrong cluster token')),
      `${method} refusal not logged:\n${logs.join('\n')}`,
    );
  }
  // Refused before any handler ran: the valid SubmitRun created no run, Register no worker.
  assert.equal((store.sqlite.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n, 0);
  assert.equal((store.sqlite.prepare('SELECT count(*) AS n FROM workers').get() as { n: number }).n, 0);

  const wrong = await runCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--token', 'wrong-token', '--connect-timeout-ms', '5000'], {
    timeoutMs: 30_000,
  });
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /wrong cluster token/);
  const none = await runCli(['worker', '--coordinator', `127.0.0.1:${port}`], { env: { BNN_CLUSTER_TOKEN: undefined }, timeoutMs: 30_000 });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /a cluster token is required: pass --token <secret> or set BNN_CLUSTER_TOKEN/);
});
