// `bnn launch --local N`: nats-server, a coordinator and N workers as child processes of this
// one, on loopback. Every child gets a stdin lifeline (it exits when this process goes) and
// is terminated by `stop()`. Children run in their own process group so a terminal's Ctrl-C
// reaches only the launcher, which cancels the run and then stops them in order.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { LogFormat } from '../util/log.js';
import { startNatsServer, type NatsServerHandle } from './nats-server.js';

export interface LocalClusterOptions {
  workers: number;
  threadsPerWorker: number;
  backend: string;
  /** Experiment database the coordinator writes. */
  store: string;
  natsServerBin?: string;
  /** GPU indexes: worker i gets `--gpu gpus[i % gpus.length]` (absent: no --gpu, CUDA sees what it sees). */
  gpus?: readonly number[];
  /** The coordinator's monitor port (dashboard, /metrics) on 127.0.0.1; default 0 (a free one); null: none. */
  httpPort?: number | null;
  /** A line of a child's stderr, and who wrote it (`coordinator`, `worker 0`). */
  relay(line: string, source: string): void;
  /** The children's `--log-format` (default text), the launcher's own, so their relayed lines compose with its. */
  logFormat?: LogFormat;
  /**
   * Variables of this environment the children must not inherit: the flag fallbacks
   * (BNN_COORDINATOR, BNN_NATS_URL, BNN_WORKER_GPU, ...) of a cluster the user meant elsewhere.
   */
  dropEnv?: readonly string[];
  /** Called when a worker exits (code null: killed by a signal). */
  onWorkerExit?(index: number, code: number | null): void;
  /** The coordinator's `--checkpoint-store` (default local). */
  checkpointStore?: 'local' | 'nats';
  /**
   * Run nats-server with JetStream, its files here (the object store's checkpoints outlive the
   * cluster: `bnn resume` starts its server on the same directory). Needed for `checkpointStore: nats`.
   */
  jetstreamDir?: string;
}

export interface LocalCluster {
  /** `127.0.0.1:<port>` of the coordinator. */
  coordinator: string;
  token: string;
  /** The nats-server's url, without its credentials (those reach only the coordinator, which hands them to its workers). */
  natsUrl: string;
  /** `http://127.0.0.1:<port>/` of the coordinator's dashboard; null without a monitor port. */
  dashboard: string | null;
  /**
   * Stops workers, coordinator and nats-server; idempotent. Workers get `workerGraceMs` to
   * exit by themselves first (after a run ends they still report and write their files).
   */
  stop(workerGraceMs?: number): Promise<void>;
}

/** How `bnn` re-runs itself: the same node flags (e.g. the tsx loader) and entry script. */
function bnnCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [...process.execArgv, process.argv[1]!] };
}

function forward(child: ChildProcess, name: string, relay: (line: string, source: string) => void): void {
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => relay(l, name));
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/**
 * Where a local cluster's nats-server keeps JetStream's files (the object store's checkpoints):
 * beside the local checkpoints, so `bnn resume` of the run finds them again.
 */
export function localJetstreamDir(checkpointDir: string): string {
  return resolve(checkpointDir, '.nats-jetstream');
}

/** What a local cluster's nats-server lets its one user do: the collective's subjects and the client's inboxes. */
export const LOCAL_NATS_PERMISSIONS = { publish: ['bnn.>', '_INBOX.>'], subscribe: ['bnn.>', '_INBOX.>'] };

/**
 * With JetStream, also what the object store's client needs: the JetStream API (`$JS.API.>`: the
 * bucket's stream, its consumers, purges), the bucket's subjects (`$O.>`: chunks and metadata)
 * and the flow-control replies of the consumer a read uses (`$JS.FC.>`, `$JS.ACK.>`).
 */
export const LOCAL_NATS_OBJECT_STORE_PERMISSIONS = {
  publish: [...LOCAL_NATS_PERMISSIONS.publish, '$JS.API.>', '$O.>', '$JS.FC.>', '$JS.ACK.>'],
  subscribe: [...LOCAL_NATS_PERMISSIONS.subscribe, '$O.>'],
};

/**
 * The environments of the children: the cluster token for all; the NATS credentials for the
 * coordinator only, in its environment (a command line is visible to `ps`), which hands them to
 * its workers in their assignments. A user's own BNN_NATS_* (meant for another cluster) would
 * override those, so they are removed, with `drop`.
 */
function childEnvs(
  token: string,
  nats: { user: string; password: string },
  drop: readonly string[],
): { coordinator: NodeJS.ProcessEnv; worker: NodeJS.ProcessEnv } {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['BNN_NATS_USER', 'BNN_NATS_PASS', 'BNN_NATS_TOKEN', ...drop]) delete base[k];
  base.BNN_CLUSTER_TOKEN = token;
  return { coordinator: { ...base, BNN_NATS_USER: nats.user, BNN_NATS_PASS: nats.password }, worker: base };
}

/** `--gpu` of local worker i: GPUs are dealt round-robin (worker i gets gpus[i mod length]); none without a list. */
export function workerGpuArgs(gpus: readonly number[] | undefined, i: number): string[] {
  return gpus && gpus.length > 0 ? ['--gpu', String(gpus[i % gpus.length])] : [];
}

/** `bnn worker` arguments of local worker i. */
function workerArgs(o: LocalClusterOptions, address: string, i: number): string[] {
  // `--once`: the local cluster lives for its one run
  const flags = ['--coordinator', address, '--threads', String(o.threadsPerWorker), '--backend', o.backend, '--once', '--exit-with-stdin'];
  return ['worker', ...flags, ...workerGpuArgs(o.gpus, i)];
}

export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const token = randomBytes(16).toString('hex');
  // NATS auth is always on: a user and password of this launch, allowed the collective's subjects only
  const natsUser = { user: `bnn-${randomBytes(4).toString('hex')}`, password: randomBytes(24).toString('hex') };
  const env = childEnvs(token, natsUser, o.dropEnv ?? []);
  const bnn = bnnCommand();
  const cmd = bnn.cmd;
  const args = [...bnn.args, '--log-format', o.logFormat ?? 'text'];
  const children: ChildProcess[] = [];
  let nats: NatsServerHandle | null = null;
  let stopping: Promise<void> | null = null;
  const stop = (workerGraceMs = 0): Promise<void> => {
    stopping ??= (async () => {
      if (workerGraceMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(children.slice(1).map(exited)),
          new Promise<void>((r) => {
            timer = setTimeout(r, workerGraceMs);
          }),
        ]);
        clearTimeout(timer);
      }
      await Promise.all(children.slice(1).map((c) => terminate(c, 5000)));
      if (children[0]) await terminate(children[0], 5000);
      await nats?.stop();
    })();
    return stopping;
  };
  try {
    // one Go scheduler thread: the server shares these cores with the workers (see goMaxProcs)
    nats = await startNatsServer({
      ...(o.natsServerBin ? { binary: o.natsServerBin } : {}),
      goMaxProcs: 1,
      ...natsUser,
      permissions: o.jetstreamDir ? LOCAL_NATS_OBJECT_STORE_PERMISSIONS : LOCAL_NATS_PERMISSIONS,
      ...(o.jetstreamDir ? { jetstream: { storeDir: o.jetstreamDir } } : {}),
    });
    const coord = spawn(
      cmd,
      [
        ...args,
        'coordinator',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--store',
        o.store,
        '--nats',
        nats.url,
        '--exit-with-stdin',
        ...(o.checkpointStore ? ['--checkpoint-store', o.checkpointStore] : []),
        ...(o.httpPort === null ? ['--no-http'] : ['--http-host', '127.0.0.1', '--http-port', String(o.httpPort ?? 0)]),
      ],
      { env: env.coordinator, stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    children.push(coord);
    forward(coord, 'coordinator', o.relay);
    let httpPort: number | null = null;
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: coord.stdout! });
      const timer = setTimeout(() => reject(new Error('the coordinator did not start listening within 30 s')), 30_000);
      lines.on('line', (l) => {
        try {
          const msg = JSON.parse(l) as { listening?: number; http?: number };
          if (typeof msg.listening === 'number') {
            clearTimeout(timer);
            if (typeof msg.http === 'number') httpPort = msg.http;
            resolve(msg.listening);
          }
        } catch {
          /* not the announcement */
        }
      });
      coord.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the coordinator exited (code ${code}) before listening`));
      });
    });
    const address = `127.0.0.1:${port}`;
    for (let i = 0; i < o.workers; i++) {
      const w = spawn(cmd, [...args, ...workerArgs(o, address, i)], { env: env.worker, stdio: ['pipe', 'ignore', 'pipe'], detached: true });
      children.push(w);
      forward(w, `worker ${i}`, o.relay);
      w.once('exit', (code) => o.onWorkerExit?.(i, code));
    }
    return { coordinator: address, token, natsUrl: nats.url, dashboard: httpPort === null ? null : `http://127.0.0.1:${httpPort}/`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
