import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openStore } from '../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT, runCli } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

function bnn(args: string[], env: Record<string, string>, t: { after(fn: () => unknown): void }) {
  const child: ChildProcess = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => stderr, exited: new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code))) };
}

async function until<T>(what: string, fn: () => T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** nats-server and `bnn coordinator` (real processes) over a store in `dir`. */
async function startCluster(t: { after(fn: () => unknown): void }, dir: string) {
  const nats = await startTestNatsServer({ t });
  const store = join(dir, 'cluster.db');
  const env = { BNN_CLUSTER_TOKEN: 'queue-tok', NO_COLOR: '1' };
  const coord = bnn(['coordinator', '--port', '0', '--store', store, '--nats', nats.url, '--heartbeat-ms', '200', '--no-http'], env, t);
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: coord.child.stdout! }).on('line', (l) => {
      const m = /"listening":\s*(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    void coord.exited.then(() => reject(new Error(`coordinator exited:\n${coord.stderr()}`)));
  });
  return { store, env, coord, address: `127.0.0.1:${port}` };
}

test('cluster queue - long-lived workers serve queued runs one after another; a queued run says why it waits, can be cancelled, and cluster runs record backend, model size, energy', async (t) => {
  const dir = await tmpDir({ t });
  const { store, env, coord, address } = await startCluster(t, dir.path);
  const config = writeTinyConfig(dir.path, { epochs: 3 });
  const submit = async (workers: number, extra: string[] = []) => {
    const r = await runCli(['launch', '--coordinator', address, '--workers', String(workers), config, '--detach', '--json', ...extra], {
      cwd: dir.path,
      env,
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim()) as { runId: string; status: string; waiting?: string; queuePosition?: number };
  };
  const show = (id: string) => {
    const s = openStore(store, { readonly: true });
    try {
      return s.sqlite
        .prepare('SELECT status, backend, model_size_bytes AS size, energy_joules AS joules FROM runs WHERE id = ?')
        .get(id) as {
        status: string;
        backend: string;
        size: number | null;
        joules: number | null;
      };
    } finally {
      s.close();
    }
  };

  // No worker yet: both runs queue, and say why
  const first = await submit(2);
  assert.deepEqual([first.status, first.waiting, first.queuePosition], ['PENDING', 'waiting for 2 workers, 0 idle (0 registered)', 1]);
  const second = await submit(2);
  assert.equal(second.waiting, 'waiting for 2 workers, 0 idle (0 registered); 1 run ahead in the queue');
  const doomed = await submit(2, ['--priority', '-1']);
  assert.equal(doomed.queuePosition, 3);
  const shown = await runCli(['show', second.runId, '--store', store], { env, timeoutMs: 30_000 });
  assert.match(shown.stdout, /status:\s+PENDING \(waiting for 2 workers, 0 idle \(0 registered\); 1 run ahead in the queue\)/);
  const listed = await runCli(['runs', '--store', store], { env, timeoutMs: 30_000 });
  assert.match(listed.stderr, new RegExp(`${second.runId} PENDING: waiting for 2 workers`));
  // a queued run is cancelled without ever starting
  const cancelled = await runCli(['cancel', '--coordinator', address, doomed.runId], { env, timeoutMs: 30_000 });
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(cancelled.stdout, `${doomed.runId} CANCELLED\n`);

  // Two long-lived workers (no --once): the first run, then the second on the same processes
  const workers = [0, 1].map(() => bnn(['worker', '--coordinator', address, '--threads', '1', '--backend', 'cpu'], env, t));
  await until(
    'both runs to complete',
    () => show(first.runId).status === 'COMPLETED' && show(second.runId).status === 'COMPLETED',
    120_000,
  );
  for (const w of workers) assert.equal(w.child.exitCode, null, `a serving worker stays up between runs:\n${w.stderr()}`);
  for (const w of workers) assert.match(w.stderr(), /idle: waiting for the next run/);
  assert.equal(show(doomed.runId).status, 'CANCELLED');

  // Cluster runs are first-class rows: the backend that ran, the model's size, energy
  for (const id of [first.runId, second.runId]) {
    const row = show(id);
    assert.equal(row.backend, 'cpu', 'the backend the workers ran, not the one asked for');
    assert.ok((row.size ?? 0) > 0, `model size recorded: ${row.size}`);
    assert.ok((row.joules ?? 0) > 0, `energy recorded: ${row.joules}`);
  }
  const s = openStore(store, { readonly: true });
  try {
    const byWorker = s.sqlite.prepare('SELECT COUNT(DISTINCT worker_id) AS n FROM energy_samples WHERE run_id = ?').get(first.runId) as {
      n: number;
    };
    assert.equal(byWorker.n, 2, 'each worker reports its own energy');
  } finally {
    s.close();
  }

  // SIGTERM: an idle worker leaves (exit 0); the coordinator records it as left, not dead
  for (const w of workers) w.child.kill('SIGTERM');
  for (const w of workers) assert.equal(await w.exited, 0, w.stderr());
  await until('the coordinator to log the workers leaving', () => (coord.stderr().match(/ left$/gm) ?? []).length === 2, 10_000);
  assert.doesNotMatch(coord.stderr(), / (suspect|dead) \(/);
});

test('cluster queue - bnn resume --coordinator continues a cancelled run on the running cluster; the wall time adds up', async (t) => {
  const dir = await tmpDir({ t });
  const { store, env, address } = await startCluster(t, dir.path);
  const config = writeTinyConfig(dir.path, { epochs: 30 });
  const workers = [0, 1].map(() => bnn(['worker', '--coordinator', address, '--threads', '1', '--backend', 'cpu'], env, t));
  const row = (id: string) => {
    const s = openStore(store, { readonly: true });
    try {
      return s.sqlite
        .prepare(
          'SELECT status, wall_time_s AS wall, (SELECT COUNT(*) FROM epoch_metrics e WHERE e.run_id = runs.id) AS epochs FROM runs WHERE id = ?',
        )
        .get(id) as { status: string; wall: number | null; epochs: number };
    } finally {
      s.close();
    }
  };
  const started = await runCli(['launch', '--coordinator', address, '--workers', '2', config, '--detach'], {
    cwd: dir.path,
    env,
    timeoutMs: 30_000,
  });
  assert.equal(started.code, 0, started.stderr);
  const runId = started.stdout.trim();
  await until('a few epochs', () => row(runId).epochs >= 3, 120_000);
  const cancelled = await runCli(['cancel', '--coordinator', address, runId], { env, timeoutMs: 30_000 });
  assert.equal(cancelled.code, 0, cancelled.stderr);
  const before = row(runId);
  assert.equal(before.status, 'CANCELLED');
  assert.ok((before.wall ?? 0) > 0);
  // the same (long-lived) workers take the resumed run
  const resumed = await runCli(['resume', '--coordinator', address, runId.slice(0, 17), '--json'], { env, timeoutMs: 180_000 });
  assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
  const out = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as {
    runId: string;
    status: string;
    resumedStep: number;
    wallTimeS: number;
  };
  assert.equal(out.runId, runId);
  assert.equal(out.status, 'COMPLETED');
  assert.ok(out.resumedStep > 0, `continued from a checkpoint (step ${out.resumedStep})`);
  const after = row(runId);
  assert.equal(after.epochs, 30);
  assert.ok((after.wall ?? 0) > (before.wall ?? 0), `resume adds its wall time (${before.wall} s, then ${after.wall} s)`);
  for (const w of workers) assert.equal(w.child.exitCode, null, w.stderr());
  // bad input: an unknown run, and --local with --coordinator
  const unknown = await runCli(['resume', '--coordinator', address, 'r-nope'], { env, timeoutMs: 30_000 });
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /r-nope/);
  const mixed = await runCli(['resume', '--coordinator', address, runId, '--local', '2'], { env, timeoutMs: 30_000 });
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr, /--local applies to a cluster started here, not with --coordinator/);
});
