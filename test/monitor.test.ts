import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { createCoordinatorServer } from '../coordinator/index.js';
import { loadConfig } from '../src/config/index.js';
import { runMonitor } from '../src/monitor/index.js';
import { connectCoordinator } from '../src/rpc/index.js';
import { openStore } from '../src/store/index.js';
import { runCli } from './helpers/cli.js';
import { spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

interface SnapshotJson {
  workers: {
    id: string;
    hostname: string;
    state: string;
    runId: string | null;
    rank: number | null;
    step: number | null;
    samplesPerS: number | null;
    heartbeatAgeS: number | null;
    telemetry: Record<string, unknown>;
  }[];
  runs: { id: string; status: string; worldSize: number }[];
}

test('monitor - a real coordinator and worker: --json and --once snapshots (idle, then training with live step and samples/s), live view exits on q and on SIGINT', async (t) => {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t });
  const store = openStore(':memory:');
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options: { natsUrl: nats.url } });
  const port = await server.listen('127.0.0.1', 0);
  const address = `127.0.0.1:${port}`;
  const client = connectCoordinator(address, { token: 'tok' });
  t.after(async () => {
    client.close();
    await server.shutdown(200);
    store.close();
  });
  const env = { BNN_CLUSTER_TOKEN: 'tok' };
  const worker = spawnCli(['worker', '--once', '--coordinator', address, '--threads', '1', '--backend', 'cpu'], { cwd: dir.path, env, t });
  // Each wait has its own stream: leaving a for-await loop cancels the call.
  for await (const ev of client.watchCluster({ run_id: '', snapshot_interval_ms: 200 })) {
    if (ev.kind === 'snapshot' && (JSON.parse(ev.detail_json) as SnapshotJson).workers.length === 1) break;
  }

  // Idle: the worker is listed from the first snapshot, with a fresh heartbeat and no run.
  const idle = await runCli(['monitor', '--coordinator', address, '--json'], { env });
  assert.equal(idle.code, 0, idle.stderr);
  const idleSnap = JSON.parse(idle.stdout) as SnapshotJson;
  assert.equal(idleSnap.workers.length, 1);
  const [w] = idleSnap.workers;
  assert.equal(w!.state, 'alive');
  assert.equal(w!.runId, null);
  assert.ok(w!.heartbeatAgeS !== null && w!.heartbeatAgeS >= 0 && w!.heartbeatAgeS < 10, `heartbeat age ${w!.heartbeatAgeS}`);

  // Training: progress reports put the run, rank, step and samples/s on the worker's row.
  const config = await loadConfig(writeTinyConfig(dir.path, { epochs: 400 }));
  const events = client.watchCluster({ run_id: '' });
  const { run_id: runId } = await client.submitRun({ config_json: JSON.stringify(config), workers: 1 });
  for await (const ev of events) if (ev.kind === 'progress' && ev.run_id === runId && JSON.parse(ev.detail_json).step > 0) break;
  const [json, table] = await Promise.all([
    runCli(['monitor', '--coordinator', address, '--json'], { env }),
    runCli(['monitor', '--coordinator', address, '--once', '--token', 'tok']),
  ]);
  assert.equal(json.code, 0, json.stderr);
  const busy = (JSON.parse(json.stdout) as SnapshotJson).workers[0]!;
  assert.equal(busy.id, w!.id);
  assert.equal(busy.runId, runId);
  assert.equal(busy.rank, 0);
  assert.ok(busy.step !== null && busy.step > 0, `step ${busy.step}`);
  assert.ok(busy.samplesPerS !== null && busy.samplesPerS > 0, `samples/s ${busy.samplesPerS}`);
  assert.equal(typeof busy.telemetry, 'object');
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  assert.match(lines[0]!, new RegExp(`^bnn monitor ${address.replace(/\./g, '\\.')}  \\d\\d:\\d\\d:\\d\\d UTC$`));
  assert.match(lines[1]!, /^WORKER\s+HOST\s+STATE\s+RANK\s+RUN\s+STEP\s+SAMPLES\/S\s+CPU\s+GPU\s+TEMP\s+POWER\s+HEARTBEAT$/);
  assert.match(lines[2]!, new RegExp(`^${w!.id}\\s+\\S+\\s+alive\\s+0\\s+${runId}\\s+[\\d,]+\\s+[\\d,]+\\s+.*\\d+\\.\\ds ago$`));
  assert.match(table.stdout, new RegExp(`^run ${runId} tiny RUNNING: generation 1, 1 worker\\(s\\), (epoch \\d+/400|400 epochs)$`, 'm'));

  // Live, in a terminal: raw mode on, redrawn in place, q quits and restores the terminal.
  let out = '';
  const stdout = Object.assign(
    new Writable({
      write(c: Buffer | string, _e, cb) {
        out += c.toString();
        cb();
      },
    }),
    { isTTY: true },
  );
  const rawModes: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    setRawMode: (m: boolean) => {
      rawModes.push(m);
    },
  });
  const signals = new EventEmitter();
  const live = runMonitor(
    (req) => client.watchCluster(req),
    { coordinator: address, runId: '', refreshMs: 200, once: false, json: false, firstSnapshotTimeoutMs: 10_000 },
    { stdout, stdin, signals },
  );
  while (!out.includes(w!.id)) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  stdin.write('q');
  assert.equal(await live, 0);
  assert.deepEqual(rawModes, [true, false], 'raw mode entered and left');
  assert.ok(out.startsWith('\x1b[?25l\x1b[2J\x1b[H'), 'cursor hidden, screen cleared, drawn from the top');
  assert.ok((out.match(/\x1b\[H/g) ?? []).length >= 2, 'redrawn in place');
  assert.ok(out.endsWith('\x1b[?25h'), 'cursor shown again');
  assert.equal(signals.listenerCount('SIGINT'), 0, 'signal handlers removed');
  assert.equal(stdin.listenerCount('data'), 0, 'key handler removed');

  // Live, as a process with piped output (no raw mode): a table per snapshot until Ctrl-C, then exit 0.
  const proc = spawnCli(['monitor', '--coordinator', address, '--refresh-ms', '200'], { cwd: dir.path, env, t });
  const started = Date.now();
  let piped = '';
  proc.child.stdout!.on('data', (s: Buffer) => (piped += s.toString()));
  while ((piped.match(/^WORKER/gm) ?? []).length < 2 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
  assert.doesNotMatch(piped, /\x1b\[/, 'no escape codes when stdout is not a terminal');
  process.kill(proc.child.pid!, 'SIGINT');
  const exit = await proc.exited;
  assert.equal(exit.code, 0, exit.stderr);

  await client.cancelRun({ run_id: runId });
  const stopped = await worker.exited;
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('monitor - bad input: wrong token, nothing listening, malformed address; clear errors, no stack', async (t) => {
  const store = openStore(':memory:');
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options: { natsUrl: 'nats://127.0.0.1:1' } });
  const port = await server.listen('127.0.0.1', 0);
  t.after(async () => {
    await server.shutdown(200);
    store.close();
  });
  const free = await (async () => {
    const probe = createCoordinatorServer({ db: store.db, token: 'x', options: { natsUrl: 'nats://127.0.0.1:1' } });
    const p = await probe.listen('127.0.0.1', 0);
    await probe.shutdown(0);
    return p;
  })();
  const [wrongToken, nobody, malformed, noToken] = await Promise.all([
    runCli(['monitor', '--coordinator', `127.0.0.1:${port}`, '--token', 'nope', '--json']),
    runCli(['monitor', '--coordinator', `127.0.0.1:${free}`, '--token', 'tok', '--once', '--timeout-ms', '1500']),
    runCli(['monitor', '--coordinator', 'localhost', '--token', 'tok', '--once']),
    runCli(['monitor', '--coordinator', `127.0.0.1:${port}`, '--once'], { env: { BNN_CLUSTER_TOKEN: undefined } }),
  ]);
  assert.equal(wrongToken.code, 1, wrongToken.stderr);
  assert.match(JSON.parse(wrongToken.stdout).error.message, /coordinator 127\.0\.0\.1:\d+: .*token/i);
  assert.equal(nobody.code, 1, nobody.stderr);
  assert.match(nobody.stderr, /^bnn: error: coordinator 127\.0\.0\.1:\d+ (is unavailable|did not answer within 1500 ms)/);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /^bnn: error: --coordinator: 'localhost' is not valid; expected host:port$/m);
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /a cluster token is required/);
  for (const r of [wrongToken, nobody, malformed, noToken]) assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
});

test('monitor - finds the one bnn launch --local cluster of its user through a mode-0600 cluster file; none or several is a clear error', async (t) => {
  const { statSync, readdirSync, existsSync } = await import('node:fs');
  const dir = await tmpDir({ t });
  const clusterDir = dir.join('clusters');
  const env = { BNN_CLUSTER_DIR: clusterDir, BNN_CLUSTER_TOKEN: undefined };
  const none = await runCli(['monitor', '--once'], { env });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /no --coordinator given, and no 'bnn launch --local' cluster of yours runs on this host/);

  const config = writeTinyConfig(dir.path, { epochs: 400 });
  const launch = spawnCli(['launch', '--local', '1', config], { cwd: dir.path, env: { BNN_CLUSTER_DIR: clusterDir }, t });
  let file = '';
  for (let i = 0; i < 300 && !file; i++) {
    const names = existsSync(clusterDir) ? readdirSync(clusterDir).filter((n) => n.endsWith('.json')) : [];
    if (names.length > 0 && (await import('node:fs')).readFileSync(join(clusterDir, names[0]!), 'utf8').includes('"runId": "r-'))
      file = join(clusterDir, names[0]!);
    else await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(file, 'the launcher writes its cluster file');
  assert.equal(statSync(file).mode & 0o777, 0o600, 'only its user can read the token');
  assert.equal(statSync(clusterDir).mode & 0o777, 0o700);
  await launch.waitForLine(/^epoch 1\//, 120_000);
  const found = await runCli(['monitor', '--json'], { env });
  assert.equal(found.code, 0, found.stderr);
  assert.match(found.stderr, /the local cluster of bnn launch \(pid \d+\), run r-/);
  const snap = JSON.parse(found.stdout) as SnapshotJson;
  assert.equal(snap.workers.length, 1, found.stdout);
  // a second file of a live process makes the choice ambiguous
  const { writeClusterFile } = await import('../src/launch/cluster-file.js');
  const other = writeClusterFile(
    {
      coordinator: '127.0.0.1:1',
      token: 'x',
      dashboard: null,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      runId: null,
      store: '',
    },
    clusterDir,
  );
  const ambiguous = await runCli(['monitor', '--once'], { env });
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /several local clusters run; pick one with --coordinator/);
  (await import('node:fs')).rmSync(other!, { force: true });
  launch.child.kill('SIGINT');
  await launch.exited;
  assert.ok(!existsSync(file), 'the launcher removes its file when it stops');
});
