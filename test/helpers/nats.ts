import { startNatsCluster, startNatsServer, type NatsServerHandle, type NatsServerOptions } from '../../src/launch/nats-server.js';

/** Something with node:test's `after` hook. */
interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface TestNatsServer extends NatsServerHandle {
  /** Client connections the server holds now (needs `monitor`). */
  connections(): Promise<number>;
  /** Subscriptions the server holds now (needs `monitor`). */
  subscriptions(): Promise<number>;
  /** Names of the client connections the server holds now (needs `monitor`). */
  connectionNames(): Promise<string[]>;
}

/**
 * Starts `nats-server` on a free 127.0.0.1 port (monitoring on by default) and waits until it
 * accepts connections. With `t`, it is stopped when that test ends; `stop()` kills it and waits
 * for the exit. A missing binary fails with a message saying to `apt-get install nats-server`.
 */
export async function startTestNatsServer(options: NatsServerOptions & { t?: AfterHook } = {}): Promise<TestNatsServer> {
  const { t, ...rest } = options;
  const server = await startNatsServer({ monitor: true, ...rest });
  t?.after(() => server.stop());
  return withMonitor(server);
}

function withMonitor(server: NatsServerHandle): TestNatsServer {
  const monitor = async (path: string): Promise<Record<string, unknown>> => {
    if (!server.monitorUrl) throw new Error('start the server with monitor: true');
    const res = await fetch(`${server.monitorUrl}${path}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const handle: TestNatsServer = {
    url: server.url,
    port: server.port,
    pid: server.pid,
    serverName: server.serverName,
    get exited() {
      return server.exited;
    },
    stop: () => server.stop(),
    connections: async () => Number((await monitor('/connz')).num_connections),
    subscriptions: async () => Number((await monitor('/subsz')).num_subscriptions),
    connectionNames: async () =>
      (((await monitor('/connz')).connections as Array<{ name?: string }> | null) ?? []).map((c) => c.name ?? ''),
  };
  if (server.monitorUrl) handle.monitorUrl = server.monitorUrl;
  if (server.clusterPort !== undefined) handle.clusterPort = server.clusterPort;
  return handle;
}

/**
 * `n` nats-servers on loopback as one cluster (full-mesh routes, monitoring on), formed before
 * it resolves; stopped when `t` ends. `seedList` is the comma-joined client urls.
 */
export async function startTestNatsCluster(
  n: number,
  options: Parameters<typeof startNatsCluster>[1] & { t?: AfterHook } = {},
): Promise<{ servers: TestNatsServer[]; seedList: string; stop(): Promise<void> }> {
  const { t, ...rest } = options;
  const cluster = await startNatsCluster(n, rest);
  t?.after(() => cluster.stop());
  return { servers: cluster.servers.map(withMonitor), seedList: cluster.seedList, stop: () => cluster.stop() };
}
