// Probes and a bounded /metrics: the standard gRPC health service answers without the cluster token
// (every other RPC still needs it), /healthz and /readyz on the monitor port, and a finished run's
// and a departed worker's series leaving /metrics.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCoordinatorServer } from '../coordinator/index.js';
import { startMonitorHttp } from '../coordinator/http.js';
import { loadConfig } from '../src/config/index.js';
import {
  type Assignment,
  COORDINATOR_SERVICE_NAME,
  healthProtoPath,
  type MetricsReport,
  RpcUnauthenticatedError,
  type RpcStream,
} from '../src/rpc/index.js';
import { openStore } from '../src/store/index.js';
import { spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { rejection, startLoggedCoordinator } from './helpers/coordinator.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

type HealthResponse = { status: string };
type HealthClient = grpc.Client & {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: HealthResponse) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<HealthResponse>;
};

/** A plain grpc-js client of `grpc.health.v1.Health` (as grpc_health_probe or the kubelet would call it): no metadata, no token. */
function healthClient(t: { after(fn: () => void): void }, address: string): HealthClient {
  const def = protoLoader.loadSync(healthProtoPath(), { keepCase: true, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
  t.after(() => client.close());
  return client;
}

const check = (c: HealthClient, service: string) =>
  new Promise<HealthResponse>((resolve, reject) => c.Check({ service }, (err, res) => (err ? reject(err) : resolve(res!))));

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

test('health - grpc.health.v1.Health answers SERVING without a token (Check and Watch), NOT_SERVING once draining; every other RPC without the token is still refused', async (t) => {
  const { server, port, connect } = await startLoggedCoordinator(t, { token: 'tok' });
  const health = healthClient(t, `127.0.0.1:${port}`);

  assert.deepEqual(await check(health, ''), { status: 'SERVING' });
  assert.deepEqual(await check(health, COORDINATOR_SERVICE_NAME), { status: 'SERVING' });
  const unknown = (await check(health, 'no.such.Service').catch((e: unknown) => e)) as grpc.ServiceError;
  assert.equal(unknown.code, grpc.status.NOT_FOUND);

  // Watch: the current status at once, then each change.
  const watch = health.Watch({ service: '' });
  const seen: string[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    watch.on('data', (r: HealthResponse) => seen.push(r.status));
    watch.on('end', resolve);
    watch.on('error', reject);
  });
  await until('the first Watch message', 5000, async () => (seen.length > 0 ? true : undefined));
  assert.deepEqual(seen, ['SERVING']);

  // The token is still required everywhere else.
  const noToken = await rejection(connect({ token: '' }).getRun({ run_id: 'r' }));
  assert.ok(noToken instanceof RpcUnauthenticatedError, noToken.message);
  assert.match(noToken.message, /missing cluster token/);
  const wrongToken = await rejection(connect({ token: 'nope' }).getRun({ run_id: 'r' }));
  assert.ok(wrongToken instanceof RpcUnauthenticatedError, wrongToken.message);
  assert.match(wrongToken.message, /wrong cluster token/);

  server.drain();
  await until('NOT_SERVING on the Watch stream', 5000, async () => (seen.length > 1 ? true : undefined));
  assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
  assert.deepEqual(await check(health, COORDINATOR_SERVICE_NAME), { status: 'NOT_SERVING' });
  await server.shutdown(5000);
  await ended;
});

test('health - /healthz is 200 "ok"; /readyz is 200 while store and gRPC serve, 503 with the failing check once draining or with the store closed; no token, no paths', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  const server = createCoordinatorServer({ db: store.db, token: 'tok' });
  const monitor = (await startMonitorHttp(
    { coordinator: server.coordinator, db: store.db, grpc: server },
    { host: '127.0.0.1', port: 0 },
  ))!;
  t.after(async () => {
    await monitor.close();
    await server.shutdown(0);
    store.close();
  });
  const readyz = async () => {
    const r = await get(`${monitor.url}readyz`);
    assert.ok(!r.body.includes(dir.path), `no path in ${r.body}`);
    return { status: r.status, ...(JSON.parse(r.body) as object) };
  };

  // Built, not yet bound: not ready.
  assert.deepEqual(await readyz(), { status: 503, ready: false, checks: { store: 'open', grpc: 'not serving', nats: 'not used' } });
  await server.listen('127.0.0.1', 0);
  assert.deepEqual(await get(`${monitor.url}healthz`), { status: 200, body: 'ok\n' });
  assert.deepEqual(await readyz(), { status: 200, ready: true, checks: { store: 'open', grpc: 'serving', nats: 'not used' } });

  server.drain();
  assert.deepEqual(await readyz(), { status: 503, ready: false, checks: { store: 'open', grpc: 'not serving', nats: 'not used' } });
  await server.shutdown(0);
  store.close();
  assert.deepEqual(await readyz(), { status: 503, ready: false, checks: { store: 'closed', grpc: 'not serving', nats: 'not used' } });
  assert.deepEqual(await get(`${monitor.url}healthz`), { status: 200, body: 'ok\n' }, 'alive while it shuts down');
});

test('health - with --checkpoint-store nats, /readyz waits for the object store connection and turns 503 when NATS goes away', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t, jetstream: { storeDir: dir.join('js') } });
  const store = openStore(dir.join('bnn.db'));
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options: { natsUrl: nats.url, checkpointStore: 'nats' } });
  await server.listen('127.0.0.1', 0);
  const monitor = (await startMonitorHttp(
    { coordinator: server.coordinator, db: store.db, grpc: server },
    { host: '127.0.0.1', port: 0 },
  ))!;
  t.after(async () => {
    await monitor.close();
    await server.shutdown(0);
    store.close();
  });
  const readyz = async () => {
    const r = await get(`${monitor.url}readyz`);
    assert.ok(!r.body.includes(nats.url) && !r.body.includes(String(nats.port)), `no NATS url in ${r.body}`);
    return { status: r.status, ...(JSON.parse(r.body) as { checks: { nats: string } }) };
  };

  const first = await readyz();
  assert.deepEqual([first.status, first.checks.nats], [503, 'connecting']);
  const up = await until('the object store connection', 20_000, async () => {
    const r = await readyz();
    return r.status === 200 ? r : undefined;
  });
  assert.deepEqual(up.checks, { store: 'open', grpc: 'serving', nats: 'connected' });

  await nats.stop();
  const down = await until('/readyz to notice NATS gone', 20_000, async () => {
    const r = await readyz();
    return r.status === 503 ? r : undefined;
  });
  assert.deepEqual(down.checks, { store: 'open', grpc: 'serving', nats: 'disconnected' });
});

test('health - `bnn coordinator` answers the gRPC health check and /healthz, /readyz without a token', async (t) => {
  const dir = await tmpDir({ t });
  const coord = spawnCli(['coordinator', '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--store', dir.join('bnn.db')], {
    cwd: dir.path,
    env: { BNN_CLUSTER_TOKEN: 'tok' },
    t,
  });
  const [, grpcPort] = await coord.waitForLine(/coordinator listening on 127\.0\.0\.1:(\d+)/, 30_000);
  const [, base] = await coord.waitForLine(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/, 10_000);
  assert.deepEqual(await check(healthClient(t, `127.0.0.1:${grpcPort}`), ''), { status: 'SERVING' });
  assert.deepEqual(await get(`${base}healthz`), { status: 200, body: 'ok\n' });
  const ready = await get(`${base}readyz`);
  assert.equal(ready.status, 200, ready.body);
  assert.deepEqual(JSON.parse(ready.body), { ready: true, checks: { store: 'open', grpc: 'serving', nats: 'not used' } });
  coord.child.kill('SIGTERM');
  assert.equal((await coord.exited).code, 0);
});

function progress(m: Pick<MetricsReport, 'worker_id' | 'run_id' | 'rank' | 'generation'> & Partial<MetricsReport>): Partial<MetricsReport> {
  return { epoch: 0, test_loss: -1, test_acc: -1, steps: 1, step_seconds: [0.01], allreduce_bytes: 100, allreduce_seconds: 0.5, ...m };
}

/** Lines of the exposition that carry `label="value"`. */
const withLabel = (text: string, label: string, value: string) =>
  text.split('\n').filter((l) => !l.startsWith('#') && l.includes(`${label}="${value}"`));

test('metrics - a finished run and a departed worker leave /metrics after the scrape that showed their last values; runs by status stay', async (t) => {
  const dir = await tmpDir({ t });
  const { server, store, connect } = await startLoggedCoordinator(t, {
    token: 'tok',
    options: { suspectAfterMs: 60_000, deadAfterMs: 60_000 },
  });
  const monitor = (await startMonitorHttp(
    { coordinator: server.coordinator, db: store.db, grpc: server },
    { host: '127.0.0.1', port: 0 },
  ))!;
  t.after(() => monitor.close());
  const scrape = async () => (await get(`${monitor.url}metrics`)).body;
  const client = connect({ token: 'tok' });

  const workers = await Promise.all(
    ['host-a', 'host-b'].map(async (hostname, i) => {
      const { worker_id } = await client.register({ hostname, hardware_json: '', threads: 1, backend: 'cpu', pid: 4000 + i });
      const stream: RpcStream<Assignment> = client.assignments({ worker_id });
      const got: Assignment[] = [];
      void (async () => {
        for await (const a of stream) got.push(a);
      })().catch(() => undefined);
      return { id: worker_id, stream, got };
    }),
  );
  const [a, b] = workers as [(typeof workers)[0], (typeof workers)[0]];
  const config = await loadConfig(writeTinyConfig(dir.path));
  const { run_id: run } = await client.submitRun({ config_json: JSON.stringify(config), workers: 2, config_path: 'tiny.yaml' });
  await until('both ASSIGNs', 10_000, async () => (a.got.length > 0 && b.got.length > 0 ? true : undefined));
  await client.reportMetrics(progress({ worker_id: a.id, run_id: run, rank: 0, generation: 1 }));
  await client.reportMetrics(progress({ worker_id: b.id, run_id: run, rank: 1, generation: 1 }));

  const running = await scrape();
  assert.equal(withLabel(running, 'worker', b.id).length > 0, true);
  assert.match(running, new RegExp(`^bnn_allreduce_bytes_total\\{run="${run}",worker="${b.id}",hostname="host-b"\\} 100$`, 'm'));

  // Worker b's process goes: its stream closes, it is declared dead, the run re-forms on a.
  b.stream.cancel();
  await until('the re-formed group', 10_000, async () => (a.got.some((x) => x.generation === 2) ? true : undefined));
  const afterDeath = await scrape();
  assert.match(afterDeath, new RegExp(`^bnn_allreduce_bytes_total\\{run="${run}",worker="${b.id}",hostname="host-b"\\} 100$`, 'm'));
  const later = await scrape();
  assert.deepEqual(withLabel(later, 'worker', b.id), [], 'the dead worker has no series left');
  assert.match(later, new RegExp(`^bnn_allreduce_bytes_total\\{run="${run}",worker="${a.id}",hostname="host-a"\\} 100$`, 'm'));
  assert.match(later, new RegExp(`^bnn_step_duration_seconds_count\\{run="${run}"\\} 2$`, 'm'));

  // The run completes: its series are shown once more, then gone; the aggregate stays.
  await client.reportMetrics(progress({ worker_id: a.id, run_id: run, rank: 0, generation: 2 }));
  await client.reportMetrics({ worker_id: a.id, run_id: run, rank: 0, generation: 2, epoch: 0, done: true, steps: 20 });
  assert.equal((await client.getRun({ run_id: run })).status, 'COMPLETED');
  const finished = await scrape();
  assert.match(finished, new RegExp(`^bnn_allreduce_bytes_total\\{run="${run}",worker="${a.id}",hostname="host-a"\\} 200$`, 'm'));
  assert.match(finished, new RegExp(`^bnn_step_duration_seconds_count\\{run="${run}"\\} 3$`, 'm'));
  const gone = await scrape();
  assert.deepEqual(withLabel(gone, 'run', run), [], 'the finished run has no series left');
  assert.match(gone, /^bnn_runs\{status="COMPLETED"\} 1$/m);

  // An idle worker that stops (closes its stream) left: its series go the same way.
  a.stream.cancel();
  await until('worker a to leave', 10_000, async () => (server.coordinator.snapshot().workers.length === 0 ? true : undefined));
  await scrape();
  assert.deepEqual(withLabel(await scrape(), 'worker', a.id), []);
});
