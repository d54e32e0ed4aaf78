// Issue 11's multi-host acceptance test. Every host is a Linux network namespace of its own
// (test/helpers/netns.ts): nats1..3 (a nats-server cluster with JetStream), coord (the coordinator
// and its SQLite store), w1..w3 (one long-lived worker each) and client (where `bnn launch` and
// `bnn resume` run). Each process has its own working directory, HOME and TMPDIR and the run's
// checkpointDir is relative, so no host sees another's files through its own paths; checkpoints
// reach the coordinator and the resumed workers only through the JetStream object store. The test
// process, in the root namespace, only observes: it reads the coordinator's database read-only,
// the workers' weight dumps and the servers' monitoring endpoints (via `ip netns exec … curl`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { getRun, listCheckpoints, listEvents, listMembers, openStore } from '../src/store/index.js';
import { CLI_ENTRY, REPO_ROOT } from './helpers/cli.js';
import type { WeightsDump } from './helpers/cluster.js';
import { startNatsCluster, type NatsCluster, type NatsNode } from './helpers/nats-cluster.js';
import { canCreateNamespaces, createNetworkHosts, type HostProcess, type NetHost, type NetworkHosts } from './helpers/netns.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const TOKEN = 'multihost-cluster-token';
const NATS_USER = 'bnn';
const NATS_PASS = randomBytes(12).toString('hex');
const GRPC_PORT = 50051;
const WORKERS = ['w1', 'w2', 'w3'] as const;
const NATS_HOSTS = ['nats1', 'nats2', 'nats3'] as const;
const EPOCHS = 20;
const STEPS_PER_EPOCH = 10;
const TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH;
/** Faults are injected once a run has checkpointed this far (a fifth of the way or less). */
const FAULT_AFTER_STEP = 12;
const RUN_TIMEOUT_MS = 150_000;
const START_TIMEOUT_MS = 60_000;
const RUN_ID = /\b(r-\d{8}-\d{6}-[0-9a-z]+)\b/;

/**
 * A binary MLP with BatchNorm on synthetic data: 310 samples in global batches of 32 (10 steps per
 * epoch), 20 epochs, a checkpoint every 4 steps and at epoch ends; `none` compression, one thread.
 * checkpointDir is relative: each worker would resolve it in its own working directory.
 */
function writeConfig(dir: string): string {
  const file = join(dir, 'multihost.yaml');
  writeFileSync(
    file,
    `name: multihost
seed: 11
dataset:
  name: synthetic
  synthetic: { trainSize: 310, testSize: 64, shape: [4, 4, 1], numClasses: 3 }
model: { arch: mlp, hidden: [64], precision: binary, batchNorm: true }
train:
  epochs: ${EPOCHS}
  batchSize: 32
  checkpointEverySteps: 4
  compression: none
  schedule: { name: cosine }
engine: { backend: cpu, threads: 1 }
store: bnn.db
checkpointDir: ckpt
`,
  );
  return file;
}

/** A host's own directories: working directory, HOME and TMPDIR, nothing shared with another host. */
function hostDir(root: string, host: string): string {
  const dir = join(root, 'hosts', host);
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  return dir;
}

function hostEnv(dir: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: join(dir, 'tmp'), NO_COLOR: '1' };
}

/** Reads the coordinator's database (read-only, from the root namespace). */
function readStore<T>(db: string, fn: (store: ReturnType<typeof openStore>) => T): T {
  const store = openStore(db, { readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

interface RunView {
  status: string;
  error: string | null;
  checkpointSteps: number[];
  checkpoints: Array<{ step: number; createdAt: string }>;
  events: Array<{ kind: string; at: string; detail: Record<string, unknown> | null }>;
  /** Worker ids per generation. */
  members: Map<number, string[]>;
}

function runView(db: string, runId: string): RunView {
  return readStore(db, (s) => {
    const row = getRun(s.db, runId);
    const checkpoints = listCheckpoints(s.db, runId).map((c) => ({ step: c.step, createdAt: c.createdAt }));
    const members = new Map<number, string[]>();
    for (const m of listMembers(s.db, runId)) members.set(m.generation, [...(members.get(m.generation) ?? []), m.workerId]);
    return {
      status: row.status,
      error: row.error,
      checkpointSteps: checkpoints.map((c) => c.step),
      checkpoints,
      events: listEvents(s.db, runId).map((e) => ({ kind: e.kind, at: e.at, detail: e.detail })),
      members,
    };
  });
}

/** Thrown by a probe of `until` to fail at once (a run ended the wrong way). */
class Hopeless extends Error {}

/** Polls `probe` until it returns a value; fails at once when a watched process exits, or at the deadline, with their log tails. */
async function until<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  o: { timeoutMs: number; watch?: readonly (HostProcess | null)[]; context: () => string; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    let got: T | undefined | null | false;
    try {
      got = await probe();
    } catch (err) {
      if (err instanceof Hopeless) throw new Error(`${what}: ${err.message}\n${o.context()}`);
      // the database may not exist yet, or be mid-migration
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}\n${o.context()}`);
    }
    if (got !== undefined && got !== null && got !== false) return got;
    const gone = (o.watch ?? []).filter((p): p is HostProcess => p !== null && !p.running);
    if (gone.length > 0) throw new Error(`${what}: ${gone.map((p) => `${p.label} on ${p.host}`).join(', ')} exited first\n${o.context()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${o.timeoutMs} ms\n${o.context()}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 200));
  }
}

/** The whole simulated cluster: hosts, nats servers, coordinator, workers and the client. */
class Cluster {
  coordinator: HostProcess | null = null;
  readonly workers = new Map<string, HostProcess>();
  readonly db: string;
  readonly coordAddress: string;
  readonly config: string;
  private readonly clientDir: string;

  constructor(
    readonly net: NetworkHosts,
    readonly nats: NatsCluster,
    readonly root: string,
  ) {
    this.db = join(hostDir(root, 'coord'), 'bnn.db');
    this.coordAddress = `${net.host('coord').address}:${GRPC_PORT}`;
    this.clientDir = hostDir(root, 'client');
    this.config = writeConfig(this.clientDir);
  }

  host(name: string): NetHost {
    return this.net.host(name);
  }

  /** Log tails of the processes that matter for a failure (default: every process still running or that ran last on each host). */
  context(extra: readonly (HostProcess | null)[] = []): string {
    const latest = new Map<string, HostProcess>();
    for (const p of this.net.processes()) latest.set(`${p.host}/${p.label}`, p);
    const shown = [...new Set([...latest.values(), ...extra.filter((p): p is HostProcess => p !== null)])];
    return this.net.tails(shown, 25);
  }

  private bnn(host: string, args: readonly string[], label: string): HostProcess {
    const dir = host === 'client' ? this.clientDir : hostDir(this.root, host);
    return this.host(host).spawn(process.execPath, ['--import', TSX, CLI_ENTRY, ...args], { cwd: dir, env: hostEnv(dir), label });
  }

  /** `bnn coordinator` on coord, bound to its address, checkpoints in the NATS object store. */
  async startCoordinator(): Promise<HostProcess> {
    const dir = hostDir(this.root, 'coord');
    const args = [
      'coordinator',
      '--host',
      this.host('coord').address,
      '--port',
      String(GRPC_PORT),
      '--nats',
      this.nats.urls,
      '--nats-user',
      NATS_USER,
      '--nats-pass',
      NATS_PASS,
      '--checkpoint-store',
      'nats',
      '--store',
      join(dir, 'bnn.db'),
      '--token',
      TOKEN,
    ];
    const p = this.bnn('coord', args, 'coordinator');
    this.coordinator = p;
    await p.waitForLog(/"listening"/, START_TIMEOUT_MS).catch((err: Error) => {
      throw new Error(`the coordinator did not start: ${err.message}`);
    });
    return p;
  }

  /** A long-lived `bnn worker` on host `name` (its NATS seed list carries no credentials: the coordinator hands them out). */
  async startWorker(name: string, dumpDir = 'dump'): Promise<HostProcess> {
    const args = [
      'worker',
      '--coordinator',
      this.coordAddress,
      '--nats',
      this.nats.urls,
      '--token',
      TOKEN,
      '--threads',
      '1',
      '--backend',
      'cpu',
      '--dump-weights-dir',
      join(hostDir(this.root, name), dumpDir),
    ];
    const p = this.bnn(name, args, 'worker');
    this.workers.set(name, p);
    await p.waitForLog(/registered with/, START_TIMEOUT_MS).catch((err: Error) => {
      throw new Error(`the worker on ${name} did not register: ${err.message}`);
    });
    return p;
  }

  /** Starts whatever of the coordinator and the three workers is not running (a scenario before may have failed). */
  async ensureUp(): Promise<void> {
    if (!this.coordinator?.running) await this.startCoordinator();
    for (const w of WORKERS) if (!this.workers.get(w)?.running) await this.startWorker(w);
  }

  /** The id a worker's log says the coordinator gave it. */
  workerId(name: string): string {
    const m = /worker (\S+): registered with/.exec(this.workers.get(name)?.log() ?? '');
    if (!m) throw new Error(`no registration in the log of the worker on ${name}\n${this.context()}`);
    return m[1]!;
  }

  /** `bnn launch --coordinator … --workers 3` from the client, following the run; resolves once the run id is printed. */
  async launch(extra: readonly string[] = []): Promise<{ proc: HostProcess; runId: string }> {
    const proc = this.bnn(
      'client',
      ['launch', '--coordinator', this.coordAddress, '--token', TOKEN, '--workers', '3', ...extra, this.config],
      'launch',
    );
    const [, runId] = await proc.waitForLog(/bnn: run (\S+) /, START_TIMEOUT_MS);
    return { proc, runId: runId! };
  }

  /** `bnn launch … --detach` from the client: prints the run id and exits. */
  async launchDetached(extra: readonly string[] = []): Promise<string> {
    const proc = this.bnn(
      'client',
      ['launch', '--coordinator', this.coordAddress, '--token', TOKEN, '--workers', '3', '--detach', ...extra, this.config],
      'launch-detach',
    );
    const exit = await Promise.race([proc.exited, new Promise<null>((r) => setTimeout(() => r(null), START_TIMEOUT_MS))]);
    assert.ok(exit, `bnn launch --detach did not exit within ${START_TIMEOUT_MS} ms\n${proc.tail()}`);
    assert.equal(exit.code, 0, `bnn launch --detach exit code\n${proc.tail()}`);
    const m = RUN_ID.exec(proc.log());
    assert.ok(m, `bnn launch --detach printed no run id\n${proc.tail()}`);
    return m[1]!;
  }

  /** `bnn resume --coordinator … <run>` from the client, following the run. */
  resume(runId: string): HostProcess {
    return this.bnn('client', ['resume', '--coordinator', this.coordAddress, '--token', TOKEN, runId], 'resume');
  }

  /** Waits for a following CLI process (launch, resume) to exit 0 and the run to be COMPLETED in the store. */
  async completes(proc: HostProcess | null, runId: string, what: string): Promise<RunView> {
    const watch = [this.coordinator, ...this.workers.values()].filter((p) => p?.running);
    if (proc) {
      const exit = await until(`${what}: bnn ${proc.label} exits`, () => proc.exit, {
        timeoutMs: RUN_TIMEOUT_MS,
        watch: [this.coordinator],
        context: () => this.context([proc]),
      });
      assert.equal(exit.code, 0, `${what}: bnn ${proc.label} exit code (0: COMPLETED)\n${this.context([proc])}`);
    }
    const view = await until(
      `${what}: run ${runId} COMPLETED in the store`,
      () => {
        const v = runView(this.db, runId);
        if (v.status === 'FAILED' || v.status === 'CANCELLED') throw new Hopeless(`run ${runId} is ${v.status}: ${v.error}`);
        return v.status === 'COMPLETED' && v;
      },
      { timeoutMs: RUN_TIMEOUT_MS, watch, context: () => this.context() },
    );
    return view;
  }

  /** Resolves once the run recorded a checkpoint at or after `step`; fails if it ended, or got into its last epoch, first (the fault would land too late). */
  async progressed(runId: string, step: number, what: string): Promise<RunView> {
    const v = await until(
      `${what}: run ${runId} checkpointed step ${step}`,
      () => {
        const v = runView(this.db, runId);
        if (v.status !== 'PENDING' && v.status !== 'RUNNING')
          throw new Hopeless(`run ${runId} is ${v.status} (${v.error ?? 'no error'}) before the fault`);
        return v.checkpointSteps.some((s) => s >= step) && v;
      },
      { timeoutMs: RUN_TIMEOUT_MS, watch: [this.coordinator, ...this.workers.values()], context: () => this.context(), intervalMs: 100 },
    );
    assert.equal(v.status, 'RUNNING', `${what}: the run is still running when the fault comes`);
    const at = Math.max(...v.checkpointSteps);
    assert.ok(at < TOTAL_STEPS - STEPS_PER_EPOCH, `${what}: the fault lands mid-run (last checkpoint at step ${at} of ${TOTAL_STEPS})`);
    return v;
  }

  /** Final weights of a run as some worker dumped them (rank 0), from the workers' own dump dirs. */
  async dumpOf(runId: string, dumpDir: string): Promise<WeightsDump> {
    return until(
      `weights of run ${runId} dumped under */${dumpDir}`,
      () => {
        for (const w of WORKERS) {
          const file = join(hostDir(this.root, w), dumpDir, 'weights-rank0.json');
          if (!existsSync(file)) continue;
          try {
            const d = JSON.parse(readFileSync(file, 'utf8')) as WeightsDump;
            if (d.runId === runId) return d;
          } catch {
            // being written
          }
        }
        return undefined;
      },
      { timeoutMs: 20_000, context: () => this.context() },
    );
  }

  /** kill -9 of every process of the cluster: coordinator, workers and nats servers, all at once. */
  async killEverything(): Promise<void> {
    await Promise.all(['coord', ...WORKERS, ...NATS_HOSTS].map((h) => this.host(h).killAll('SIGKILL')));
  }
}

function figures(name: string, values: Record<string, unknown>): void {
  console.log(JSON.stringify({ multihost: name, ...values }));
}

async function scenarioQueue(t: TestContext, c: Cluster): Promise<void> {
  await c.ensureUp();
  const pids = new Map(WORKERS.map((w) => [w, c.workers.get(w)!.pid]));
  // run 1 lasts twice as long, so run 2 is surely queued behind it
  const run1 = await c.launch(['--epochs', String(EPOCHS * 2)]);
  await until(`run 1 (${run1.runId}) RUNNING`, () => runView(c.db, run1.runId).status === 'RUNNING', {
    timeoutMs: RUN_TIMEOUT_MS,
    watch: [c.coordinator, run1.proc],
    context: () => c.context([run1.proc]),
  });
  const run2 = await c.launchDetached();
  const [s1, s2] = [runView(c.db, run1.runId).status, runView(c.db, run2).status];
  assert.equal(s1, 'RUNNING', `run 1 still running when run 2 was queued\n${c.context()}`);
  assert.equal(s2, 'PENDING', `run 2 waits behind run 1 (all 3 workers busy)\n${c.context()}`);
  const v1 = await c.completes(run1.proc, run1.runId, 'run 1');
  const v2 = await c.completes(null, run2, 'run 2');
  const ids1 = [...(v1.members.get(1) ?? [])].sort();
  assert.equal(ids1.length, 3, `run 1 trained on 3 workers: ${ids1.join(' ')}`);
  assert.deepEqual([...(v2.members.get(1) ?? [])].sort(), ids1, 'run 2 trained on the same 3 workers as run 1');
  for (const w of WORKERS) {
    const p = c.workers.get(w)!;
    assert.ok(p.running && p.pid === pids.get(w), `the worker on ${w} still runs as pid ${pids.get(w)} after two runs\n${p.tail()}`);
  }
  t.diagnostic(`runs ${run1.runId} then ${run2} on workers ${ids1.join(' ')}`);
}

async function scenarioWorkerHostKilled(c: Cluster): Promise<void> {
  await c.ensureUp();
  const run = await c.launch();
  const atKill = await c.progressed(run.runId, FAULT_AFTER_STEP, 'run 3');
  const killedAt = Date.now();
  await c.host('w3').killAll('SIGKILL');
  const view = await c.completes(run.proc, run.runId, 'run 3 after kill -9 of host w3');
  const regen = view.events.find((e) => e.kind === 'generation' && Date.parse(e.at) >= killedAt - 1000);
  assert.ok(regen, `the group re-formed after the kill: events ${view.events.map((e) => e.kind).join(' ')}`);
  assert.ok(Math.max(...view.members.keys()) > 1, 'the run ended in a generation after the first');
  assert.equal(regen.detail?.worldSize, 2, `re-formed with the 2 survivors: ${JSON.stringify(regen.detail)}`);
  figures('worker-host-killed', {
    runId: run.runId,
    lastCheckpointBeforeKill: Math.max(...atKill.checkpointSteps),
    killToReformedMs: Date.parse(regen.at) - killedAt,
    generations: Math.max(...view.members.keys()),
  });
  // w3 comes back for the next scenarios
  await c.startWorker('w3');
}

async function scenarioNatsServerStopped(c: Cluster): Promise<void> {
  await c.ensureUp();
  const run = await c.launch();
  await c.progressed(run.runId, FAULT_AFTER_STEP, 'run 4');
  const w1 = c.workerId('w1');
  const held = new Map<NatsNode, string[]>();
  for (const n of c.nats.nodes) held.set(n, await c.nats.connectionNames(n));
  const victim = c.nats.nodes.find((n) => held.get(n)!.some((name) => name.includes(w1)));
  assert.ok(
    victim,
    `a nats-server holds a connection named after worker ${w1} (w1): ${JSON.stringify(Object.fromEntries([...held].map(([n, names]) => [n.name, names])))}`,
  );
  const stoppedAt = Date.now();
  await victim.process!.stop();
  const view = await c.completes(run.proc, run.runId, `run 4 after stopping ${victim.name}, the nats-server w1 was connected to`);
  const regen = view.events.find((e) => e.kind === 'generation' && Date.parse(e.at) >= stoppedAt);
  figures('nats-server-stopped', {
    runId: run.runId,
    server: victim.name,
    generations: Math.max(...view.members.keys()),
    stopToReformedMs: regen ? Date.parse(regen.at) - stoppedAt : null,
    firstEventAfterStopMs:
      view.events.filter((e) => Date.parse(e.at) >= stoppedAt).map((e) => [e.kind, Date.parse(e.at) - stoppedAt])[0] ?? null,
  });
  victim.start();
  await c.nats.waitReady(START_TIMEOUT_MS);
}

async function scenarioWholeClusterKilled(c: Cluster): Promise<void> {
  await c.ensureUp();
  // run 5: uninterrupted reference
  const ref = await c.launch();
  await c.completes(ref.proc, ref.runId, 'run 5 (reference)');
  const reference = await c.dumpOf(ref.runId, 'dump');
  assert.equal(reference.steps, TOTAL_STEPS, 'run 5 trained every step');

  // run 6: same config, killed whole once its checkpoints are in the object store (its OBJ_ streams grew)
  const objectMessages = async () => (await c.nats.streams()).filter((x) => x.name.startsWith('OBJ_')).reduce((n, x) => n + x.messages, 0);
  const before6 = await objectMessages();
  const run6 = await c.launchDetached();
  await c.progressed(run6, FAULT_AFTER_STEP, 'run 6');
  const objects = await until(
    `run 6 checkpoints in the JetStream object store (OBJ_ streams beyond the ${before6} messages before it)`,
    async () => {
      const n = await objectMessages();
      return n > before6 && n;
    },
    { timeoutMs: 30_000, context: () => c.context() },
  );
  const killedAt = Date.now();
  await c.killEverything();
  const before = runView(c.db, run6);
  assert.equal(before.status, 'RUNNING', 'the coordinator died with run 6 in flight');
  assert.ok(
    before.checkpointSteps.length > 0 && Math.max(...before.checkpointSteps) < TOTAL_STEPS,
    `checkpoints: ${before.checkpointSteps.join(' ')}`,
  );
  // Nothing may come from the hosts' local disks: move any local checkpoint files out of reach.
  const hidden = ['coord', ...WORKERS].filter((h) => {
    const local = join(hostDir(c.root, h), 'ckpt');
    if (existsSync(local)) renameSync(local, `${local}.hidden-after-kill`);
    return existsSync(`${local}.hidden-after-kill`);
  });

  for (const n of c.nats.nodes) n.start();
  await c.nats.waitReady(START_TIMEOUT_MS);
  await c.startCoordinator();
  for (const w of WORKERS) await c.startWorker(w, 'dump-resumed');
  const resumeStart = Date.now();
  const resume = c.resume(run6);
  const view = await c.completes(resume, run6, 'run 6 resumed from the client namespace');
  const resumeEnd = Date.now();
  const requested = view.events.find((e) => e.kind === 'resume-requested');
  assert.ok(requested, `a resume-requested event: ${view.events.map((e) => e.kind).join(' ')}`);
  const refusals = view.events.filter((e) => e.kind === 'checkpoint-refused').map((e) => e.detail);
  assert.ok(
    Number(requested.detail?.step) > 0,
    `resumed from a checkpoint, not from step 0: ${JSON.stringify(requested.detail)}; refused: ${JSON.stringify(refusals)}`,
  );
  const resumed = await c.dumpOf(run6, 'dump-resumed');
  assert.equal(resumed.steps, TOTAL_STEPS, 'the resumed run trained to the end');
  assert.equal(resumed.worldSize, 3, 'same world size as the reference');
  assert.deepEqual(resumed.params, reference.params, 'resumed run 6 ends bit-identical to uninterrupted run 5');
  const restarted = view.events.find((e) => e.kind === 'resumed' && Date.parse(e.at) >= resumeStart - 1000);
  const firstCkpt = view.checkpoints.find((x) => Date.parse(x.createdAt) >= resumeStart);
  figures('whole-cluster-killed', {
    runId: run6,
    objectStoreMessages: { beforeRun6: before6, atKill: objects },
    localCheckpointDirsHidden: hidden,
    resumedFromStep: requested.detail?.step,
    killToResumeCommandMs: resumeStart - killedAt,
    resumeToGroupFormedMs: restarted ? Date.parse(restarted.at) - resumeStart : null,
    resumeToFirstCheckpointMs: firstCkpt ? Date.parse(firstCkpt.createdAt) - resumeStart : null,
    resumeToCompletedMs: resumeEnd - resumeStart,
  });
}

test('cluster multihost - nats cluster, coordinator and 3 worker hosts in their own network namespaces: queued runs on long-lived workers, a worker host killed, a nats-server stopped, the whole cluster killed and resumed from another host bit-identical', {
  timeout: 10 * 60_000,
}, async (t) => {
  const reason = canCreateNamespaces();
  if (reason) {
    t.skip(`cannot create network namespaces here: ${reason}`);
    return;
  }
  const started = Date.now();
  const dir = await tmpDir({ prefix: 'bnn-multihost-' });
  const net = await createNetworkHosts([...NATS_HOSTS, 'coord', ...WORKERS, 'client'], { logDir: dir.join('logs') });
  // processes first, then their files
  t.after(async () => {
    await net.cleanup();
    if (!process.env.BNN_KEEP_TEST_DIR) await dir.cleanup();
  });
  let cluster: Cluster | null = null;
  const must = () => {
    assert.ok(cluster, 'the cluster was not set up (see the first failing subtest)');
    return cluster;
  };

  await t.test(
    'network - each host has its address only inside its namespace; a 3-node nats-server cluster with JetStream forms across hosts',
    async () => {
      const rootAddrs = execFileSync('ip', ['-o', '-4', 'addr'], { encoding: 'utf8' });
      assert.ok(!rootAddrs.includes(net.subnet.replace(/\.0\/24$/, '.')), `no address of ${net.subnet} in the root namespace`);
      for (const h of net.hosts) {
        const r = await h.run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
        assert.ok(r.stdout.includes(`${h.address}/24`), `${h.name} has ${h.address}: ${r.stdout}${r.stderr}`);
      }
      const nats = startNatsCluster(
        NATS_HOSTS.map((n) => net.host(n)),
        { dir: dir.join('nats'), user: NATS_USER, password: NATS_PASS, env: hostEnv(dir.path) },
      );
      await nats.waitReady(START_TIMEOUT_MS);
      // reachable from the other hosts (the client here), not only from its own
      for (const n of nats.nodes) {
        const varz = await net.host('client').httpGet(`${n.monitorUrl}/varz`);
        assert.equal(varz?.status, 200, `client reaches ${n.name}'s monitor at ${n.monitorUrl}`);
      }
      cluster = new Cluster(net, nats, dir.path);
    },
  );

  await t.test('cluster - the coordinator (bound to its host address) and 3 long-lived workers start, each on its own host', async () => {
    await must().ensureUp();
  });

  await t.test(
    'a - run 1 completes on 3 workers; run 2, queued behind it with launch --detach, completes on the same worker processes',
    (st) => scenarioQueue(st, must()),
  );

  await t.test('b - kill -9 of every process of worker host w3 mid-run: the run completes on the 2 survivors', () =>
    scenarioWorkerHostKilled(must()),
  );

  await t.test('c - the nats-server a worker is connected to is stopped mid-run: the run completes', () =>
    scenarioNatsServerStopped(must()),
  );

  await t.test(
    'd - the whole cluster killed mid-run; bnn resume --coordinator from the client host continues from the object store and ends bit-identical to an uninterrupted run',
    () => scenarioWholeClusterKilled(must()),
  );

  await t.test('e - cleanup: every namespace and process the test made is gone', async () => {
    await net.cleanup();
    net.ensureLeftNothing();
    figures('total', { wallMs: Date.now() - started });
  });
});
