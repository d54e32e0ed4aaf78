// The data plane of `bnn launch --local` against a third process on the same host: without
// credentials it cannot reach nats-server; with the server's credentials (read from its config
// file, as any process of the same user could) but without the run's secret, the chunks it forges
// on the run's coming steps are dropped, counted and reported, and the run ends exactly as an
// undisturbed one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { connectNatsTransport, HEADER_BYTES, NatsAuthError, type Transport } from '../src/collective/index.js';
import { loadConfig } from '../src/config/index.js';
import type { MetricsReport } from '../src/rpc/index.js';
import { listEvents, openStore } from '../src/store/index.js';
import { runCli } from './helpers/cli.js';
import { readWeights, spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { coordinatorWithMetrics } from './helpers/coordinator.js';
import { tmpDir } from './helpers/tmp.js';

/** The user and password in the config file of the nats-server listening on `port` (found through `ps`, then read). */
function natsCredentials(port: number): { user: string; password: string } {
  const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n');
  const line = ps.find((l) => /nats-server/.test(l) && l.includes(` -p ${port} `));
  assert.ok(line, `no nats-server on port ${port} in ps`);
  const file = line.match(/ -c (\S+)/)![1]!;
  const m = readFileSync(file, 'utf8').match(/user: "([^"]+)", password: "([^"]+)"/);
  assert.ok(m, `no user/password in ${file}`);
  return { user: m[1]!, password: m[2]! };
}

interface Forger {
  /** Messages published: replays of genuine chunks on later steps, and the same with NaN or finite bodies. */
  readonly published: number;
  stop(): Promise<void>;
}

/**
 * Watches every `bnn.>` message; for each chunk of step s it publishes, on the same chunk of
 * steps s+1 and s+2 (before their genuine chunks exist): the genuine message as it is, then
 * with every fp32 of its body NaN, then 0.25 (finite). MACs, where present, are left as they were.
 */
function forge(t: Transport): Forger {
  const sub = t.subscribe('bnn.>');
  const done = new Set<string>();
  let published = 0;
  const running = (async () => {
    for await (const m of sub) {
      const tok = m.subject.split('.');
      if (tok.length !== 7 || !['rs', 'ag', 'ga'].includes(tok[3]!)) continue;
      const step = Number(tok[4]);
      for (const ahead of [1, 2]) {
        tok[4] = String(step + ahead);
        const subject = tok.join('.');
        if (done.has(subject)) continue;
        done.add(subject);
        const count = new DataView(m.data.buffer, m.data.byteOffset).getUint32(4, true);
        t.publish(subject, Uint8Array.from(m.data));
        for (const v of [Number.NaN, 0.25]) {
          const data = Uint8Array.from(m.data);
          new Float32Array(data.buffer, HEADER_BYTES, count).fill(v);
          t.publish(subject, data);
        }
        published += 3;
      }
    }
  })().catch(() => undefined);
  return {
    get published() {
      return published;
    },
    stop: async () => {
      sub.stop();
      await running;
    },
  };
}

test('dataplane auth - a launch --local nats-server refuses a client without credentials or with a wrong password; its user may use only bnn.> and inboxes', async (t) => {
  const dir = await tmpDir({ t });
  // long enough to outlast the checks; cancelled at the end
  const config = writeTinyConfig(dir.path, { epochs: 300 });
  const launch = spawnCli(['launch', '--local', '1', config], { cwd: dir.path, t });
  const [, url, port] = await launch.waitForLine(/ nats (nats:\/\/127\.0\.0\.1:(\d+))/, 30_000);
  assert.doesNotMatch(url!, /@/, 'the header shows no credentials');
  await assert.rejects(connectNatsTransport({ servers: url!, name: 'intruder' }), (e: unknown) => e instanceof NatsAuthError);
  const creds = natsCredentials(Number(port));
  await assert.rejects(
    connectNatsTransport({ servers: url!, user: creds.user, password: 'wrong', name: 'intruder' }),
    (e: unknown) => e instanceof NatsAuthError && !e.message.includes(creds.password),
  );
  const t3 = await connectNatsTransport({ servers: url!, ...creds, name: 'third' });
  try {
    const outside = t3.subscribe('other.>');
    await assert.rejects(
      (async () => {
        for await (const _ of outside) break;
      })(),
      /Permissions Violation/i,
    );
  } finally {
    await t3.close();
  }
  launch.child.kill('SIGINT');
  await launch.exited;
});

test('dataplane auth - forged NaN and finite chunks and replays on coming steps of a 2-worker launch are rejected and reported; the final weights equal an undisturbed run bit for bit', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, { epochs: 4 });
  const calm = await runCli(['launch', '--local', '2', config, '--quiet'], {
    cwd: dir.path,
    timeoutMs: 60_000,
    env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('calm') },
  });
  assert.equal(calm.code, 0, calm.stderr);

  const launch = spawnCli(['launch', '--local', '2', config], { cwd: dir.path, t, env: { BNN_WORKER_DUMP_WEIGHTS: dir.join('forged') } });
  const [, runId, url, port] = await launch.waitForLine(/^bnn: run (\S+) .* nats (nats:\/\/127\.0\.0\.1:(\d+))/, 30_000);
  const forger = await connectNatsTransport({ servers: url!, ...natsCredentials(Number(port)), name: 'forger' });
  const forgery = forge(forger);
  const end = await launch.exited;
  await forgery.stop();
  await forger.close();
  assert.equal(end.code, 0, end.stderr);
  assert.match(end.stdout, new RegExp(`^run ${runId} COMPLETED `, 'm'));
  assert.ok(forgery.published >= 30, `the forger published ${forgery.published} messages`);

  for (const rank of [0, 1]) {
    const forged = readWeights(dir.join('forged'), rank);
    const undisturbed = readWeights(dir.join('calm'), rank);
    assert.equal(forged.steps, 40);
    assert.deepEqual(forged.params, undisturbed.params, `rank ${rank}: weights equal bit for bit`);
    for (const v of Object.values(forged.params)) assert.ok(v.every(Number.isFinite));
  }

  const store = openStore(dir.join('bnn.db'), { readonly: true });
  try {
    const events = listEvents(store.db, runId!);
    const rejected = events.filter((e) => e.kind === 'messages-rejected');
    assert.ok(rejected.length > 0, `no messages-rejected event: ${events.map((e) => e.kind).join(' ')}`);
    const subjects = rejected.flatMap((e) => e.detail?.subjects as string[]);
    const pattern = new RegExp(`^bnn\\.${runId!}\\.1\\.(rs|ag)\\.\\d+\\.[01]\\.\\d+$`);
    assert.ok(subjects.length > 0 && subjects.every((s) => pattern.test(s)), subjects.join(' '));
    const total = events.find((e) => e.kind === 'messages-rejected-total');
    const reported = rejected.reduce((n, e) => n + (e.detail?.count as number), 0);
    assert.ok(total && (total.detail?.count as number) >= reported && reported > 0, JSON.stringify(total?.detail));
  } finally {
    store.close();
  }
});

test('dataplane auth - rejected messages in progress reports count in bnn_collective_messages_rejected_total per run and worker', async (t) => {
  const dir = await tmpDir({ t });
  const { coordinator, metrics } = coordinatorWithMetrics(t, dir.join('bnn.db'));
  const { worker_id } = coordinator.register({ hostname: 'h', hardware_json: '', threads: 1, backend: 'cpu', pid: 1 });
  coordinator.assignments(worker_id);
  const { run_id } = coordinator.submit(JSON.stringify(await loadConfig(writeTinyConfig(dir.path))), 1, '');
  const report = (rejected: number): MetricsReport =>
    ({
      worker_id,
      run_id,
      generation: 1,
      rank: 0,
      epoch: 0,
      steps: 1,
      step_seconds: [0.01],
      rejected_messages: rejected,
      rejected_subjects: rejected > 0 ? [`bnn.${run_id}.1.rs.3.0.0`] : [],
    }) as MetricsReport;
  for (const n of [4, 0, 3]) coordinator.reportMetrics(report(n));
  await new Promise((r) => setImmediate(r));
  const text = await metrics.render();
  assert.match(text, /^# TYPE bnn_collective_messages_rejected_total counter$/m);
  assert.match(text, new RegExp(`^bnn_collective_messages_rejected_total\\{run="${run_id}",worker="${worker_id}",hostname="h"\\} 7$`, 'm'));
});
