// The bounded soak (`npm run soak`): one multi-epoch run on a 3-worker cluster while random
// faults hit it — kill -9 of a worker, SIGSTOP of a worker (long enough to be declared dead,
// then SIGCONT), a nats-server restart. A supervisor restarts every worker that exits, as a
// Kubernetes Deployment or Slurm requeue would. Passes when the run COMPLETES within its time
// limit and every fault left its trace in the store (a `dead` member or a `collective-failed`
// report, and a new generation). Prints its figures (faults survived, time to re-form, accuracy
// against an undisturbed run of the same config) and `--json` for machines.
//
//   npm run soak -- [--events 20] [--workers 3] [--seed 1] [--epochs 8] [--subset 1] [--no-baseline] [--json]
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startNatsServer, type NatsServerHandle } from '../../src/launch/nats-server.js';
import { connectCoordinator, type CoordinatorClient } from '../../src/rpc/index.js';
import { listEvents, listMembers, openStore } from '../../src/store/index.js';
import { Rng } from '../../src/util/rng.js';
import { REPO_ROOT } from '../helpers/cli.js';

const BNN = join(REPO_ROOT, 'bin', 'bnn.js');
const CONFIG = join(REPO_ROOT, 'examples', 'fmnist-mlp-binary.yaml');

interface SoakOptions {
  events: number;
  workers: number;
  seed: number;
  epochs: number;
  subset: number;
  baseline: boolean;
  json: boolean;
  timeoutS: number;
}

type FaultKind = 'kill -9' | 'SIGSTOP' | 'nats restart';
interface Fault {
  kind: FaultKind;
  atMs: number;
  target: string;
  /** Time until the next generation was formed (null: none followed). */
  reformS: number | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const say = (o: SoakOptions, line: string) => {
  if (!o.json) process.stderr.write(`soak: ${line}\n`);
};

function parse(): SoakOptions {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '20' },
      workers: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      epochs: { type: 'string', default: '8' },
      subset: { type: 'string', default: '1' },
      'timeout-s': { type: 'string', default: '1800' },
      'no-baseline': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const int = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: '${v}' is not valid; expected an integer >= ${min}`);
    return n;
  };
  return {
    events: int('events', values.events, 1),
    workers: int('workers', values.workers, 2),
    seed: int('seed', values.seed, 0),
    epochs: int('epochs', values.epochs, 1),
    subset: Number(values.subset),
    timeoutS: int('timeout-s', values['timeout-s'], 10),
    baseline: !values['no-baseline'],
    json: values.json === true,
  };
}

/** A child `bnn` process with its stderr lines forwarded to `log`. */
function bnn(args: string[], env: Record<string, string>, log: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [BNN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', log);
  return child;
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));

/** The cluster under test: nats-server (restartable on its port), a coordinator and supervised workers. */
class Cluster {
  nats!: NatsServerHandle;
  natsPort = 0;
  coordinator!: ChildProcess;
  address = '';
  readonly workers: Array<ChildProcess | null> = [];
  private stopping = false;
  readonly token = randomBytes(16).toString('hex');
  readonly natsUser = { user: `soak-${randomBytes(4).toString('hex')}`, password: randomBytes(16).toString('hex') };

  constructor(
    private readonly dir: string,
    private readonly size: number,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.startNats();
    const natsUrl = `nats://${this.natsUser.user}:${this.natsUser.password}@127.0.0.1:${this.natsPort}`;
    this.coordinator = bnn(
      ['coordinator', '--host', '127.0.0.1', '--port', '0', '--no-http', '--store', join(this.dir, 'bnn.db'), '--nats', natsUrl],
      { BNN_CLUSTER_TOKEN: this.token },
      (l) => this.log(`[coordinator] ${l}`),
    );
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: this.coordinator.stdout! }).on('line', (l) => {
        const m = /"listening":(\d+)/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      this.coordinator.once('exit', (code) => reject(new Error(`the coordinator exited (${code}) before listening`)));
    });
    this.address = `127.0.0.1:${port}`;
    for (let i = 0; i < this.size; i++) this.startWorker(i);
  }

  private async startNats(): Promise<void> {
    this.nats = await startNatsServer({ port: this.natsPort, ...this.natsUser, goMaxProcs: 1 });
    this.natsPort = this.nats.port;
  }

  /** Starts worker `i` and restarts it a second after it exits, until the soak stops. */
  startWorker(i: number): void {
    const w = bnn(
      ['worker', '--once', '--coordinator', this.address, '--threads', '1', '--step-deadline-ms', '15000'],
      { BNN_CLUSTER_TOKEN: this.token },
      (l) => this.log(`[worker ${i}] ${l}`),
    );
    this.workers[i] = w;
    w.once('exit', () => {
      if (this.workers[i] === w) this.workers[i] = null;
      if (!this.stopping) setTimeout(() => this.startWorker(i), 1000);
    });
  }

  async restartNats(downMs: number): Promise<void> {
    await this.nats.stop();
    await sleep(downMs);
    await this.startNats();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of this.workers) w?.kill('SIGKILL');
    this.coordinator?.kill('SIGTERM');
    await Promise.all([
      ...this.workers.filter((w): w is ChildProcess => w !== null).map(exited),
      this.coordinator ? exited(this.coordinator) : undefined,
    ]);
    await this.nats?.stop();
  }
}

/** Test accuracy of an undisturbed run of the same config (`bnn launch --local N`). */
async function baselineAccuracy(o: SoakOptions, dir: string): Promise<number | null> {
  const child = spawn(process.execPath, [BNN, 'launch', '--local', String(o.workers), CONFIG, ...configArgs(o, dir), '--json', '--quiet'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  await exited(child);
  try {
    return (JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { finalTestAcc?: number }).finalTestAcc ?? null;
  } catch {
    return null;
  }
}

function configArgs(o: SoakOptions, dir: string): string[] {
  return [
    '--epochs',
    String(o.epochs),
    '--subset',
    String(o.subset),
    '--seed',
    String(o.seed),
    '--store',
    join(dir, 'bnn.db'),
    '--checkpoint-dir',
    join(dir, 'ckpt'),
    '--set',
    'train.checkpointEverySteps=50',
  ];
}

/** The run config as the CLI builds it, for SubmitRun. */
async function runConfigJson(o: SoakOptions, dir: string): Promise<string> {
  const { loadConfig } = await import('../../src/config/load.js');
  const { applyOverrides } = await import('../../src/config/overrides.js');
  const config = applyOverrides(await loadConfig(CONFIG), {
    epochs: String(o.epochs),
    subset: String(o.subset),
    seed: String(o.seed),
    store: join(dir, 'bnn.db'),
    checkpointDir: join(dir, 'ckpt'),
    set: ['train.checkpointEverySteps=50'],
  });
  return JSON.stringify(config);
}

/**
 * Injects `o.events` faults while the run trains, one at a time, each after the group has
 * recovered from the previous. The first waits for the run's first progress report: a worker
 * killed before the group formed leaves nothing to re-form.
 */
async function injectFaults(
  o: SoakOptions,
  cluster: Cluster,
  run: { ended(): boolean; training(): boolean },
  generations: number[],
): Promise<Fault[]> {
  const done = run.ended;
  while (!run.training() && !done()) await sleep(200);
  const rng = new Rng(o.seed);
  const faults: Fault[] = [];
  const t0 = Date.now();
  while (faults.length < o.events && !done()) {
    await sleep(2000 + rng.int(4000));
    if (done()) break;
    const r = rng.nextFloat();
    const kind: FaultKind = r < 0.4 ? 'kill -9' : r < 0.7 ? 'SIGSTOP' : 'nats restart';
    const alive = cluster.workers.map((w, i) => (w ? i : -1)).filter((i) => i >= 0);
    if (kind !== 'nats restart' && alive.length < o.workers) continue; // one worker down at a time
    const i = alive[rng.int(alive.length)]!;
    const fault: Fault = { kind, atMs: Date.now() - t0, target: kind === 'nats restart' ? 'nats-server' : `worker ${i}`, reformS: null };
    faults.push(fault);
    say(o, `event ${faults.length}/${o.events} at ${(fault.atMs / 1000).toFixed(1)} s: ${kind} ${fault.target}`);
    const before = generations.length;
    if (kind === 'kill -9') cluster.workers[i]!.kill('SIGKILL');
    else if (kind === 'SIGSTOP') {
      const w = cluster.workers[i]!;
      w.kill('SIGSTOP');
      await sleep(9000); // past the coordinator's dead-after (6 s): evicted, then continued
      w.kill('SIGCONT');
    } else await cluster.restartNats(500 + rng.int(1500));
    fault.reformS = await waitForGeneration(generations, before, t0 + fault.atMs, 60_000);
    await sleep(3000); // let the restarted worker register and rejoin
  }
  return faults;
}

/** Seconds from `sinceMs` to the first generation formed after index `before`; null if none within `timeoutMs`. */
async function waitForGeneration(generations: number[], before: number, sinceMs: number, timeoutMs: number): Promise<number | null> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (generations.length > before) return (generations[before]! - sinceMs) / 1000;
    await sleep(100);
  }
  return null;
}

/** Follows the run's events until it ends; records when each generation formed. */
async function follow(
  client: CoordinatorClient,
  runId: string,
  generations: number[],
  onProgress: () => void,
): Promise<{ status: string; error: string; testAcc: number | null }> {
  const watch = client.watchCluster({ run_id: runId });
  let testAcc: number | null = null;
  for await (const ev of watch) {
    const d = JSON.parse(ev.detail_json) as Record<string, unknown>;
    if (ev.kind === 'generation') generations.push(Date.now());
    if (ev.kind === 'progress') onProgress();
    if (ev.kind === 'epoch' && typeof d.testAcc === 'number') testAcc = d.testAcc;
    if (ev.kind === 'run' && ['COMPLETED', 'FAILED', 'CANCELLED'].includes(String(d.status))) {
      watch.cancel();
      return { status: String(d.status), error: String(d.error ?? ''), testAcc };
    }
  }
  const info = await client.getRun({ run_id: runId });
  return { status: info.status, error: info.error, testAcc };
}

/** What the store recorded: events by kind and the generations the run went through. */
function recorded(dir: string, runId: string): { events: Record<string, number>; generations: number } {
  const store = openStore(join(dir, 'bnn.db'), { readonly: true });
  try {
    const events: Record<string, number> = {};
    for (const e of listEvents(store.db, runId)) events[e.kind] = (events[e.kind] ?? 0) + 1;
    const generations = new Set(listMembers(store.db, runId).map((m) => m.generation)).size;
    return { events, generations };
  } finally {
    store.close();
  }
}

async function main(): Promise<number> {
  const o = parse();
  const dir = mkdtempSync(join(tmpdir(), 'bnn-soak-'));
  const baseDir = mkdtempSync(join(tmpdir(), 'bnn-soak-base-'));
  const cluster = new Cluster(dir, o.workers, () => undefined);
  const t0 = Date.now();
  try {
    if (o.baseline) say(o, 'undisturbed baseline run');
    const baseline = o.baseline ? await baselineAccuracy(o, baseDir) : null;
    await cluster.start();
    const client = connectCoordinator(cluster.address, { token: cluster.token });
    await client.waitForReady(30_000);
    const info = await client.submitRun({ config_json: await runConfigJson(o, dir), workers: o.workers, config_path: CONFIG });
    say(o, `run ${info.run_id} submitted to ${o.workers} workers`);
    const generations: number[] = [];
    let ended = false;
    let training = false;
    const timeout = setTimeout(() => void client.cancelRun({ run_id: info.run_id }).catch(() => undefined), o.timeoutS * 1000);
    const following = follow(client, info.run_id, generations, () => (training = true)).finally(() => (ended = true));
    const faults = await injectFaults(o, cluster, { ended: () => ended, training: () => training }, generations);
    const end = await following;
    clearTimeout(timeout);
    client.close();
    const store = recorded(dir, info.run_id);
    const reforms = faults.map((f) => f.reformS).filter((s): s is number => s !== null);
    const report = {
      runId: info.run_id,
      status: end.status,
      error: end.error || null,
      wallTimeS: (Date.now() - t0) / 1000,
      events: faults.length,
      faults,
      reformS: { median: median(reforms), max: reforms.length ? Math.max(...reforms) : null, missing: faults.length - reforms.length },
      finalTestAcc: end.testAcc,
      baselineTestAcc: baseline,
      storeEvents: store.events,
      generations: store.generations,
    };
    // every fault re-formed the group, and the store holds each of those generations
    const ok =
      end.status === 'COMPLETED' && faults.length >= o.events && reforms.length === faults.length && store.generations >= faults.length + 1;
    if (o.json) process.stdout.write(`${JSON.stringify({ ok, ...report })}\n`);
    else printReport(report, ok);
    return ok ? 0 : 1;
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(baseDir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function printReport(r: Record<string, unknown> & { faults: Fault[] }, ok: boolean): void {
  const kinds: Record<string, number> = {};
  for (const f of r.faults) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
  process.stdout.write(
    [
      `soak ${ok ? 'passed' : 'FAILED'}: run ${r.runId} ${r.status}${r.error ? ` (${r.error})` : ''} in ${(r.wallTimeS as number).toFixed(0)} s`,
      `faults: ${r.events} (${Object.entries(kinds)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')})`,
      `time to re-form: ${JSON.stringify(r.reformS)}`,
      `generations: ${r.generations}; store events: ${JSON.stringify(r.storeEvents)}`,
      `final test accuracy ${r.finalTestAcc ?? 'n/a'} (undisturbed: ${r.baselineTestAcc ?? 'not run'})`,
    ].join('\n'),
  );
  process.stdout.write('\n');
}

process.exitCode = await main();
