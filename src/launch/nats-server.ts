import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

export interface NatsServerOptions {
  /** The executable. Default `nats-server` on PATH (env NATS_SERVER_BIN overrides). */
  binary?: string;
  /** Client port; 0 (default) picks a free loopback port. */
  port?: number;
  /** Server `max_payload` in bytes. Default: the server's (1 MiB). */
  maxPayloadBytes?: number;
  /** Server `max_pending` (per-client outbound buffer) in bytes. Default: the server's (64 MiB). */
  maxPendingBytes?: number;
  /** Require this user (with `password`) from every client. Written to the config file, not the command line (`ps` shows that). */
  user?: string;
  password?: string;
  /** With `user`: the subjects that user may publish and subscribe to (NATS wildcards); absent: all. */
  permissions?: { publish: string[]; subscribe: string[] };
  /** Require this token from every client (exclusive with user/password). */
  token?: string;
  /** Serve TLS with this certificate and key; with `caFile`, also require client certificates it signed (`verify`). */
  tls?: { certFile: string; keyFile: string; caFile?: string };
  /** Start the HTTP monitoring endpoint (/connz, /subsz) on a free port. */
  monitor?: boolean;
  /** Give up if the server does not accept connections within this long. Default 5000. */
  startTimeoutMs?: number;
  /**
   * GOMAXPROCS of the server (Go's scheduler threads); absent: the server's default (one per
   * core) or the environment's GOMAXPROCS. `bnn launch --local` sets 1: its server shares the
   * cores with the training processes, and one scheduler thread routed a 2-worker run's
   * gradients with a third less CPU (46 instead of 69 CPU ticks per 8 s).
   */
  goMaxProcs?: number;
  /**
   * Enable JetStream (the object store keeps checkpoints there), its files under `storeDir`
   * (kept after stop: what is stored outlives the server, and a server started on the same
   * directory later serves it again).
   */
  jetstream?: { storeDir: string };
  /** `server_name` in the config (unique per node: clustered JetStream requires it). Default `bnn-<client port>`. */
  serverName?: string;
  /** Join a cluster: routes listen on `port` (0: a free loopback port) and dial `routes`. */
  cluster?: NatsClusterOptions;
}

/** The `cluster {}` block of one node. */
export interface NatsClusterOptions {
  /** Cluster name; every node of one cluster has the same. */
  name: string;
  /** Route port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Route urls of the other nodes (`nats-route://[user:pass@]127.0.0.1:<route port>`). */
  routes: string[];
  /** Credentials an incoming route must present (and, embedded in `routes`, the ones this node presents). */
  authorization?: { user: string; password: string };
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>`. */
  url: string;
  port: number;
  pid: number;
  /** `http://127.0.0.1:<port>` when `monitor` was set. */
  monitorUrl?: string;
  /** The route port when started with `cluster`. */
  clusterPort?: number;
  /** Its `server_name`. */
  serverName: string;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Terminates the server and waits for it to exit; idempotent. */
  stop(): Promise<void>;
}

/** The nats-server executable is not installed. */
export class NatsServerMissingError extends Error {
  readonly userFacing = true as const;
  constructor(binary: string, options: { cause?: unknown } = {}) {
    super(`'${binary}' was not found: install NATS server (e.g. 'apt-get install nats-server') or set NATS_SERVER_BIN`, options);
    this.name = 'NatsServerMissingError';
  }
}

/** nats-server could not be started (bad options, a port in use, ...): the message has its own words. */
export class NatsServerStartError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'NatsServerStartError';
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** The `authorization` block of one user, with its subject permissions when given. */
function userAuthorization(user: string, password: string, permissions?: { publish: string[]; subscribe: string[] }): string {
  const who = `user: ${JSON.stringify(user)}, password: ${JSON.stringify(password)}`;
  if (!permissions) return `authorization { ${who} }`;
  const list = (subjects: string[]) => `[${subjects.map((x) => JSON.stringify(x)).join(', ')}]`;
  return `authorization { users: [ { ${who}, permissions: { publish: ${list(permissions.publish)}, subscribe: ${list(permissions.subscribe)} } } ] }`;
}

/** The config's `tls {}` block; with a CA, client certificates are required (`verify`). */
function tlsBlock(t: { certFile: string; keyFile: string; caFile?: string }): string {
  const verify = t.caFile !== undefined ? `, ca_file: ${JSON.stringify(t.caFile)}, verify: true` : '';
  return `tls { cert_file: ${JSON.stringify(t.certFile)}, key_file: ${JSON.stringify(t.keyFile)}${verify} }`;
}

/** The `jetstream` block, its store directory made. */
async function jetstreamBlock(storeDir: string): Promise<string> {
  await mkdir(storeDir, { recursive: true });
  return `jetstream { store_dir: ${JSON.stringify(storeDir)} }`;
}

/** Starts nats-server on loopback and resolves once it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  if (options.token !== undefined && options.user !== undefined)
    throw new NatsServerStartError('nats-server: give a token or a user/password, not both');
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const port = options.port || (await freePort());
  const monitorPort = options.monitor ? await freePort() : undefined;
  const { serverName, clusterPort, lines: clusterConf } = await identityAndCluster(options, port);
  const dir = await mkdtemp(join(tmpdir(), 'bnn-nats-'));
  const conf: string[] = [...clusterConf, 'write_deadline: "30s"'];
  if (options.maxPayloadBytes !== undefined) conf.push(`max_payload: ${options.maxPayloadBytes}`);
  if (options.maxPendingBytes !== undefined) conf.push(`max_pending: ${options.maxPendingBytes}`);
  if (options.user !== undefined) conf.push(userAuthorization(options.user, options.password ?? '', options.permissions));
  if (options.token !== undefined) conf.push(`authorization { token: ${JSON.stringify(options.token)} }`);
  if (options.jetstream) conf.push(await jetstreamBlock(options.jetstream.storeDir));
  if (options.tls) conf.push(tlsBlock(options.tls));
  const confFile = join(dir, 'nats.conf');
  await writeFile(confFile, `${conf.join('\n')}\n`, { mode: 0o600 });
  const args = ['-a', '127.0.0.1', '-p', String(port), '-c', confFile];
  if (monitorPort !== undefined) args.push('-m', String(monitorPort));

  const env = options.goMaxProcs === undefined ? process.env : { ...process.env, GOMAXPROCS: String(options.goMaxProcs) };
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  killAllOnExit();
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  let exited = false;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  const cleanupDir = () => rm(dir, { recursive: true, force: true });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const killTimer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exitPromise;
          clearTimeout(killTimer);
        }
        await cleanupDir();
      })();
    }
    return stopping;
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 5000);
  for (;;) {
    if (exited) {
      await stop();
      if (spawnError && (spawnError as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NatsServerMissingError(binary, { cause: spawnError });
      throw new NatsServerStartError(
        `nats-server exited before accepting connections: ${spawnError?.message ?? stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new NatsServerStartError(
        `nats-server did not accept connections on 127.0.0.1:${port} within ${options.startTimeoutMs ?? 5000} ms: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    serverName,
    get exited() {
      return exited;
    },
    stop,
  };
  if (monitorPort !== undefined) handle.monitorUrl = `http://127.0.0.1:${monitorPort}`;
  if (clusterPort !== undefined) handle.clusterPort = clusterPort;
  return handle;
}

/** The node's `server_name` (always set: clustered JetStream requires one per node) and its `cluster {}` block, if any. */
async function identityAndCluster(
  options: NatsServerOptions,
  port: number,
): Promise<{ serverName: string; clusterPort: number | undefined; lines: string[] }> {
  const serverName = options.serverName ?? `bnn-${port}`;
  const lines = [`server_name: ${JSON.stringify(serverName)}`];
  if (!options.cluster) return { serverName, clusterPort: undefined, lines };
  const clusterPort = options.cluster.port || (await freePort());
  lines.push(clusterBlock(options.cluster, clusterPort));
  return { serverName, clusterPort, lines };
}

/** The config's `cluster {}` block: routes listen on loopback, dial the others, and (with authorization) require a route user. */
function clusterBlock(c: NatsClusterOptions, port: number): string {
  const lines = [`  name: ${JSON.stringify(c.name)}`, `  listen: "127.0.0.1:${port}"`];
  if (c.authorization)
    lines.push(`  authorization { user: ${JSON.stringify(c.authorization.user)}, password: ${JSON.stringify(c.authorization.password)} }`);
  if (c.routes.length > 0) lines.push(`  routes: [${c.routes.map((r) => JSON.stringify(r)).join(', ')}]`);
  return `cluster {\n${lines.join('\n')}\n}`;
}

export interface NatsClusterHandle {
  /** The nodes, in start order. */
  servers: NatsServerHandle[];
  /** Every node's client url, comma-joined: the seed list for `--nats`. */
  seedList: string;
  /** Stops every node; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `n` nats-servers on loopback as one cluster (full mesh: each node routes to every other),
 * and resolves once each has its n−1 routes (read from its monitor's /routez; monitoring is always
 * on here, on 127.0.0.1). Routes require a user and password made for this cluster, so nothing
 * else on the host can join it as a route and read its traffic. `options` apply to every node
 * (client port and `cluster` are chosen here); node i is named `<cluster name>-<i>`.
 */
export async function startNatsCluster(
  n: number,
  options: Omit<NatsServerOptions, 'port' | 'cluster' | 'serverName'> & { name?: string; routeTimeoutMs?: number } = {},
): Promise<NatsClusterHandle> {
  if (!Number.isInteger(n) || n < 1) throw new NatsServerStartError(`a NATS cluster needs at least one server (got ${n})`);
  const { name = `bnn-${randomBytes(3).toString('hex')}`, routeTimeoutMs = 10_000, ...rest } = options;
  const routeUser = { user: `route-${randomBytes(4).toString('hex')}`, password: randomBytes(24).toString('hex') };
  // every port chosen up front, all distinct (a free port is only free until something binds it)
  const ports: number[] = [];
  while (ports.length < 2 * n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const clientPorts = ports.slice(0, n);
  const routePorts = ports.slice(n);
  const routeUrl = (p: number) => `nats-route://${routeUser.user}:${routeUser.password}@127.0.0.1:${p}`;
  const servers: NatsServerHandle[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = routePorts[i]!;
      servers.push(
        await startNatsServer({
          ...rest,
          // each node keeps its own JetStream files
          ...(rest.jetstream ? { jetstream: { storeDir: join(rest.jetstream.storeDir, `${name}-${i}`) } } : {}),
          port: clientPorts[i]!,
          monitor: true,
          serverName: `${name}-${i}`,
          cluster: { name, port, routes: routePorts.filter((q) => q !== port).map(routeUrl), authorization: routeUser },
        }),
      );
    }
    const deadline = Date.now() + routeTimeoutMs;
    for (const s of servers) {
      for (;;) {
        const routes = await fetch(`${s.monitorUrl}/routez`)
          .then((r) => r.json() as Promise<{ num_routes?: number }>)
          .then((j) => j.num_routes ?? 0)
          .catch(() => 0);
        if (routes >= n - 1) break;
        if (Date.now() > deadline)
          throw new NatsServerStartError(
            `NATS cluster ${name}: ${s.serverName} has ${routes} of ${n - 1} routes after ${routeTimeoutMs} ms`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { servers, seedList: servers.map((s) => s.url).join(','), stop };
}
