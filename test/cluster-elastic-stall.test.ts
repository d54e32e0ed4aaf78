import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import type { CoordinatorOptions } from '../coordinator/index.js';
import { loadConfig } from '../src/config/index.js';
import { listEvents } from '../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { startTestCoordinator } from './helpers/coordinator.js';
import { startTestNatsServer } from './helpers/nats.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

/**
 * An in-process coordinator with `options`, three `bnn worker` processes (extra flags `workerArgs`)
 * and a 6-epoch tiny run. After epoch 1 one worker is frozen with SIGSTOP: its TCP connections stay
 * open, so only its silence (heartbeats, all-reduce contributions) can give it away.
 */
async function frozenWorkerRun(
  t: { after(fn: () => unknown): void },
  options: Partial<CoordinatorOptions>,
  workerArgs: string[],
  o: { epochs?: number; joinAfterShrink?: boolean } = {},
) {
  const dir = await tmpDir({ t });
  const nats = await startTestNatsServer({ t });
  const { store, address, client } = await startTestCoordinator(t, dir.join('bnn.db'), { natsUrl: nats.url, ...options });
  const startWorker = () => {
    const child = spawn(
      process.execPath,
      ['--import', TSX, CLI_ENTRY, 'worker', '--once', '--coordinator', address, '--threads', '1', '--backend', 'cpu', ...workerArgs],
      {
        env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return {
      child,
      exited: new Promise<{ code: number | null; stderr: () => string }>((resolve) =>
        child.on('close', (code) => resolve({ code, stderr: () => stderr })),
      ),
    };
  };
  const children = [0, 1, 2].map(() => startWorker());
  const watch = client.watchCluster({ run_id: '' });
  const config = await loadConfig(writeTinyConfig(dir.path, { epochs: o.epochs ?? 6 }));
  const { run_id: runId } = await client.submitRun({ config_json: JSON.stringify(config), workers: 3 });
  let frozenAt = 0;
  let frozenPid = 0;
  let status = '';
  for await (const ev of watch) {
    if (ev.run_id !== runId) continue;
    const d = JSON.parse(ev.detail_json) as { epoch?: number; status?: string; worldSize?: number };
    if (ev.kind === 'generation' && d.worldSize === 2 && o.joinAfterShrink && children.length === 3) children.push(startWorker());
    if (ev.kind === 'epoch' && d.epoch === 1 && !frozenAt) {
      frozenPid = children[2]!.child.pid!;
      process.kill(frozenPid, 'SIGSTOP');
      frozenAt = Date.now();
    }
    if (ev.kind === 'run' && (d.status === 'COMPLETED' || d.status === 'FAILED')) {
      status = d.status;
      break;
    }
  }
  watch.cancel();
  process.kill(frozenPid, 'SIGKILL');
  const survivors = await Promise.all([...children.slice(0, 2), ...children.slice(3)].map((c) => c.exited));
  const events = listEvents(store.db, runId);
  return { status, survivors, events, frozenAt, frozenPid };
}

test('cluster elastic stall - a frozen worker (SIGSTOP) is declared dead by heartbeat loss within deadAfterMs; a new worker joins the shrunken group mid-run', async (t) => {
  const r = await frozenWorkerRun(t, { heartbeatIntervalMs: 250, suspectAfterMs: 1000, deadAfterMs: 3000, sweepIntervalMs: 100 }, [], {
    epochs: 100,
    joinAfterShrink: true,
  });
  assert.equal(r.status, 'COMPLETED', r.survivors.map((s) => s.stderr()).join('\n'));
  for (const s of r.survivors) assert.equal(s.code, 0, s.stderr());
  const dead = r.events.find((e) => e.kind === 'dead')!;
  assert.ok(dead, r.events.map((e) => e.kind).join(' '));
  const detectionMs = Date.parse(dead.at) - r.frozenAt;
  t.diagnostic(`heartbeat-loss detection ${detectionMs} ms (deadAfterMs 3000)`);
  assert.ok(detectionMs <= 10_000, `detected ${detectionMs} ms after the freeze`);
  const generation = r.events.find((e) => e.kind === 'generation')!;
  assert.match(String(generation.detail!.reason), /lost: silent \d+ ms/);
  assert.equal(generation.detail!.worldSize, 2);
  const joined = r.events.filter((e) => e.kind === 'generation').at(-1)!;
  assert.deepEqual([joined.detail!.reason, joined.detail!.worldSize], ['worker(s) joined', 3], 'the newcomer was admitted');
  assert.match(r.survivors[2]!.stderr(), /took rank 0's state at step \d+ \(was at 0\)/);
  assert.match(r.survivors[2]!.stderr(), /done after 1000 steps/);
});

test('cluster elastic stall - survivors whose all-reduce misses its deadline name the frozen rank; the coordinator evicts it and the run finishes', async (t) => {
  // Heartbeats would take a minute to notice; the 4 s all-reduce deadline notices first.
  const r = await frozenWorkerRun(t, { suspectAfterMs: 60_000, deadAfterMs: 60_000 }, ['--step-deadline-ms', '4000']);
  assert.equal(r.status, 'COMPLETED', r.survivors.map((s) => s.stderr()).join('\n'));
  for (const s of r.survivors) assert.equal(s.code, 0, s.stderr());
  const failed = r.events.filter((e) => e.kind === 'collective-failed');
  assert.ok(failed.length >= 1, r.events.map((e) => e.kind).join(' '));
  // A step (or the next generation's ready barrier) timed out naming the frozen rank.
  assert.ok(
    failed.some((e) => /timed out after 4000 ms: no contribution from rank/.test(String(e.detail!.error))),
    JSON.stringify(failed.map((e) => e.detail)),
  );
  // (A failure naming nobody — the frozen rank had sent its part but not its reduced shard —
  // re-forms the same three first; the next deadline, the new group's barrier, names it.)
  const shrunk = r.events.find((e) => e.kind === 'generation' && e.detail!.worldSize === 2);
  assert.ok(shrunk, JSON.stringify(r.events.filter((e) => e.kind === 'generation').map((e) => e.detail)));
  assert.match(String(shrunk.detail!.reason), /collective failed on rank \d at step \d+/);
  assert.ok(
    r.events.some((e) => e.kind === 'dead'),
    'the frozen worker is recorded dead',
  );
  assert.ok(r.survivors.some((s) => /timed out/.test(s.stderr())));
});
