import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { connectCoordinator } from '../src/rpc/index.js';
import { processesMentioning, spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { runCli } from './helpers/cli.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

/** `promtool check metrics` over `text`: its exit status and what it printed (lint problems). */
function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw new Error(`promtool did not run (${r.error.message}); install it: apt-get install -y prometheus`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Value of the sample `name{labels…}` whose labels include every given one (first match). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Resolves once the coordinator announced itself on stdout (its signal handlers are installed by then). */
function announced(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer | string) => {
      out += String(d);
      if (out.includes('{"listening":')) resolve();
    });
  });
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

test('metrics - a coordinator training a run on two workers serves /metrics that promtool accepts: worker gauges, step histogram, all-reduce counters, runs by status', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t });
  const env = { BNN_CLUSTER_TOKEN: 'tok' };
  const coord = spawnCli(
    ['coordinator', '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--store', dir.join('bnn.db'), '--nats', nats.url],
    { cwd: dir.path, env, t },
  );
  const [, grpcPort] = await coord.waitForLine(/coordinator listening on 127\.0\.0\.1:(\d+)/, 30_000);
  const [, base] = await coord.waitForLine(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/, 10_000);
  const metricsUrl = `${base}metrics`;

  // Before any worker: valid, with the run and worker gauges at zero.
  const empty = await scrape(metricsUrl);
  assert.deepEqual(promtool(empty), { status: 0, output: '' });
  assert.equal(sample(empty, 'bnn_workers', { state: 'alive' }), 0);
  assert.equal(sample(empty, 'bnn_runs', { status: 'RUNNING' }), 0);

  const workers = [0, 1].map(() =>
    spawnCli(['worker', '--once', '--coordinator', `127.0.0.1:${grpcPort}`, '--threads', '1', '--backend', 'cpu'], {
      cwd: dir.path,
      env,
      t,
    }),
  );
  const client = connectCoordinator(`127.0.0.1:${grpcPort}`, { token: 'tok' });
  t.after(() => client.close());
  const config = await loadConfig(writeTinyConfig(dir.path, { epochs: 500 }));
  const { run_id: runId } = await client.submitRun({ config_json: JSON.stringify(config), workers: 2 });

  // Progress reports arrive about once a second per rank once training runs.
  const running = await until('progress of both ranks in /metrics', 45_000, async () => {
    const text = await scrape(metricsUrl);
    const steps = sample(text, 'bnn_step_duration_seconds_count', { run: runId }) ?? 0;
    const bytes = ['0', '1'].map((rank) => {
      const id = text.match(new RegExp(`bnn_worker_info\\{worker="([^"]+)",[^}]*rank="${rank}"\\} 1`))?.[1];
      return id ? (sample(text, 'bnn_allreduce_bytes_total', { run: runId, worker: id }) ?? 0) : 0;
    });
    return steps > 0 && bytes.every((b) => b > 0) ? text : undefined;
  });
  const lint = promtool(running);
  assert.deepEqual(lint, { status: 0, output: '' }, lint.output);
  assert.equal(sample(running, 'bnn_workers', { state: 'alive' }), 2);
  assert.equal(sample(running, 'bnn_runs', { status: 'RUNNING' }), 1);
  assert.equal(sample(running, 'bnn_run_generation', { run: runId }), 1);
  assert.equal(sample(running, 'bnn_run_world_size', { run: runId }), 2);
  const ids = [...running.matchAll(/^bnn_worker_info\{worker="([^"]+)"/gm)].map((m) => m[1]!);
  assert.equal(ids.length, 2);
  for (const worker of ids) {
    assert.equal(sample(running, 'bnn_worker_state', { worker, state: 'alive' }), 1);
    assert.equal(sample(running, 'bnn_worker_state', { worker, state: 'suspect' }), 0);
    assert.ok(sample(running, 'bnn_worker_step', { worker })! > 0);
    assert.ok(sample(running, 'bnn_worker_samples_per_second', { worker })! > 0);
    // Heartbeats every second; a loaded machine may delay one, never past the 10 s dead threshold.
    const age = sample(running, 'bnn_worker_heartbeat_age_seconds', { worker })!;
    assert.ok(age >= 0 && age < 10, `heartbeat age ${age}`);
    const cpu = sample(running, 'bnn_worker_cpu_utilization_ratio', { worker })!;
    assert.ok(cpu >= 0 && cpu <= 1, `cpu utilisation ${cpu}`);
    assert.ok(sample(running, 'bnn_allreduce_seconds_total', { run: runId, worker })! > 0);
  }
  // The histogram is cumulative: +Inf holds every observation.
  assert.equal(
    sample(running, 'bnn_step_duration_seconds_bucket', { run: runId, le: '+Inf' }),
    sample(running, 'bnn_step_duration_seconds_count', { run: runId }),
  );

  assert.equal((await client.cancelRun({ run_id: runId })).status, 'CANCELLED');
  for (const w of workers) assert.equal((await w.exited).code, 0);
  const after = await until('workers gone from /metrics', 20_000, async () => {
    const text = await scrape(metricsUrl);
    return sample(text, 'bnn_workers', { state: 'alive' }) === 0 ? text : undefined;
  });
  assert.deepEqual(promtool(after), { status: 0, output: '' });
  assert.equal(sample(after, 'bnn_runs', { status: 'CANCELLED' }), 1);
  assert.equal(sample(after, 'bnn_runs', { status: 'RUNNING' }), 0);
  assert.equal(sample(after, 'bnn_run_generation', { run: runId }), undefined);

  coord.child.kill('SIGTERM');
  assert.equal((await coord.exited).code, 0);
  assert.deepEqual(processesMentioning(dir.path), []);
  await assert.rejects(fetch(metricsUrl), 'the monitor port is closed with the coordinator');
});

test('metrics - --http-port in use is a clear error (exit 1); the default port in use only warns; a bad --http-port is bad usage (exit 2); --no-http opens no monitor port', async (t) => {
  const dir = await tmpDir({ t });
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as { port: number }).port;
  const env = { BNN_CLUSTER_TOKEN: 'tok' };
  const common = ['coordinator', '--host', '127.0.0.1', '--port', '0', '--store', dir.join('bnn.db')];

  const inUse = await runCli([...common, '--http-port', String(port)], { cwd: dir.path, env, timeoutMs: 30_000 });
  assert.equal(inUse.code, 1, inUse.stderr);
  assert.match(
    inUse.stderr,
    new RegExp(`--http-port ${port}: the port is in use on 127\\.0\\.0\\.1; pick another \\(0: a free one\\) or pass --no-http`),
  );
  assert.doesNotMatch(inUse.stderr, /\n\s+at /, 'no stack trace for a user error');

  const bad = await runCli([...common, '--http-port', 'lots'], { cwd: dir.path, env });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--http-port: 'lots' is not valid; expected a port from 0 to 65535 \(0: a free one\)/);

  // The default port (9464) taken, here or by whatever else holds it: the coordinator serves without a monitor.
  const holder = createServer();
  const held = await new Promise<boolean>((resolve) => {
    holder.once('error', () => resolve(false));
    holder.listen(9464, '127.0.0.1', () => resolve(true));
  });
  t.after(() => new Promise<void>((r) => (held ? holder.close(() => r()) : r())));
  const withDefault = spawnCli(common, { cwd: dir.path, env, t });
  await Promise.all([
    withDefault.waitForLine(
      /warning: no dashboard or \/metrics: port 9464 is in use on 127\.0\.0\.1 \(pass --http-port <n>, 0 for a free one, or --no-http\)/,
      30_000,
    ),
    announced(withDefault.child),
  ]);
  withDefault.child.kill('SIGTERM');
  const defaultDone = await withDefault.exited;
  assert.equal(defaultDone.code, 0, defaultDone.stderr);
  assert.deepEqual(Object.keys(JSON.parse(defaultDone.stdout.trim()) as object), ['listening']);

  const coord = spawnCli([...common, '--no-http'], { cwd: dir.path, env, t });
  await announced(coord.child);
  coord.child.kill('SIGTERM');
  const done = await coord.exited;
  assert.equal(done.code, 0, done.stderr);
  assert.doesNotMatch(done.stderr, /dashboard/);
  assert.deepEqual(Object.keys(JSON.parse(done.stdout.trim()) as object), ['listening']);
});
