// A nats-server cluster with JetStream, one server per namespace host (test/helpers/netns.ts):
// config files written here (server_name, client/cluster/monitor listeners on the host's address,
// routes to the others, a user and password), store dirs that survive a restart of the server.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostProcess, NetHost } from './netns.js';

export interface NatsClusterOptions {
  /** Each server's config file and JetStream store go to `<dir>/<host name>/`. */
  dir: string;
  user: string;
  password: string;
  /** Default: NATS_SERVER_BIN or nats-server. */
  binary?: string;
  env: Record<string, string | undefined>;
}

export interface NatsNode {
  readonly host: NetHost;
  readonly name: string;
  /** `nats://<address>:4222`, no credentials. */
  readonly url: string;
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** The running server (the latest start), null before the first. */
  readonly process: HostProcess | null;
  /** Starts the server (again) with the same config and store. */
  start(): HostProcess;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** The client urls, comma-separated (no credentials). */
  readonly urls: string;
  node(name: string): NatsNode;
  /** Resolves when every running server is healthy (`/healthz`: JetStream on, its streams current), routed to every other running one, and the JetStream meta group has a leader. */
  waitReady(timeoutMs: number): Promise<void>;
  /** GET a monitoring endpoint of one server (from its own host); null when unreachable. */
  monitor(node: NatsNode, path: string): Promise<Record<string, unknown> | null>;
  /** Names of the client connections a server holds now. */
  connectionNames(node: NatsNode): Promise<string[]>;
  /** JetStream streams (name, messages, bytes) over every running server. */
  streams(): Promise<Array<{ name: string; messages: number; bytes: number }>>;
}

const CLIENT_PORT = 4222;
const ROUTE_PORT = 6222;
const MONITOR_PORT = 8222;

function config(host: NetHost, peers: readonly NetHost[], storeDir: string, o: NatsClusterOptions): string {
  const a = host.address;
  const routes = peers.filter((p) => p !== host).map((p) => JSON.stringify(`nats-route://${p.address}:${ROUTE_PORT}`));
  return `server_name: ${JSON.stringify(host.name)}
listen: "${a}:${CLIENT_PORT}"
http: "${a}:${MONITOR_PORT}"
write_deadline: "30s"
jetstream {
  store_dir: ${JSON.stringify(storeDir)}
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: bnn
  listen: "${a}:${ROUTE_PORT}"
  routes: [ ${routes.join(', ')} ]
}
authorization { user: ${JSON.stringify(o.user)}, password: ${JSON.stringify(o.password)} }
`;
}

/** Writes the configs and starts one server on each host; call `waitReady` next. */
export function startNatsCluster(hosts: readonly NetHost[], o: NatsClusterOptions): NatsCluster {
  const binary = o.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const nodes: NatsNode[] = hosts.map((host) => {
    const home = join(o.dir, host.name);
    const storeDir = join(home, 'jetstream');
    mkdirSync(storeDir, { recursive: true });
    const confFile = join(home, 'nats.conf');
    writeFileSync(confFile, config(host, hosts, storeDir, o), { mode: 0o600 });
    let proc: HostProcess | null = null;
    const node: NatsNode = {
      host,
      name: host.name,
      url: `nats://${host.address}:${CLIENT_PORT}`,
      monitorUrl: `http://${host.address}:${MONITOR_PORT}`,
      storeDir,
      get process() {
        return proc;
      },
      start() {
        if (proc?.running) throw new Error(`nats-server on ${host.name} is already running (pid ${proc.pid})`);
        // One scheduler thread: the servers share two cores with the coordinator and the workers.
        proc = host.spawn(binary, ['-c', confFile], { cwd: home, env: { ...o.env, GOMAXPROCS: '1' }, label: 'nats-server' });
        return proc;
      },
    };
    return node;
  });
  for (const n of nodes) n.start();

  const monitor = async (node: NatsNode, path: string) => {
    const r = await node.host.httpGet(`${node.monitorUrl}${path}`);
    if (r?.status !== 200) return null;
    try {
      return JSON.parse(r.body) as Record<string, unknown>;
    } catch {
      return null;
    }
  };

  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no nats node '${name}'`);
      return n;
    },
    monitor,
    async waitReady(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let why = '';
      for (;;) {
        const running = nodes.filter((n) => n.process?.running);
        const dead = nodes.filter((n) => n.process && !n.process.running);
        if (dead.length > 0 && running.length === 0)
          throw new Error(`every nats-server exited\n${dead.map((n) => n.process!.tail()).join('\n')}`);
        why = await notReady(running);
        if (why === '') return;
        if (Date.now() > deadline) {
          throw new Error(
            `nats cluster not ready within ${timeoutMs} ms: ${why}\n${nodes.map((n) => n.process?.tail(15) ?? '').join('\n')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    },
    async connectionNames(node) {
      const connz = await monitor(node, '/connz?limit=1024');
      const conns = (connz?.connections ?? []) as Array<{ name?: string }>;
      return conns.map((c) => c.name ?? '');
    },
    async streams() {
      // each server lists the streams it holds a replica of; a stream's state is its largest report
      const byName = new Map<string, { name: string; messages: number; bytes: number }>();
      for (const n of nodes.filter((x) => x.process?.running)) {
        const jsz = await monitor(n, '/jsz?accounts=true&streams=true');
        const accounts = (jsz?.account_details ?? []) as Array<{
          stream_detail?: Array<{ name: string; state: { messages: number; bytes: number } }>;
        }>;
        for (const st of accounts.flatMap((a) => a.stream_detail ?? [])) {
          const seen = byName.get(st.name);
          if (!seen || st.state.messages > seen.messages)
            byName.set(st.name, { name: st.name, messages: st.state.messages, bytes: st.state.bytes });
        }
      }
      return [...byName.values()];
    },
  };

  /** '' when ready, else what is missing. */
  async function notReady(running: readonly NatsNode[]): Promise<string> {
    for (const n of running) {
      const health = await n.host.httpGet(`${n.monitorUrl}/healthz`);
      if (health?.status !== 200) return `${n.name}: healthz ${health ? `${health.status} ${health.body}` : 'unreachable'}`;
      const routez = await monitor(n, '/routez');
      const routed = Number(routez?.num_routes ?? 0);
      if (routed < running.length - 1) return `${n.name}: ${routed} of ${running.length - 1} routes`;
      const jsz = await monitor(n, '/jsz');
      const leader = (jsz?.meta_cluster as { leader?: string } | undefined)?.leader;
      if (!leader) return `${n.name}: no JetStream meta leader`;
    }
    return '';
  }

  return cluster;
}
