// `bnn coordinator`: opens the store, binds the gRPC port and serves until SIGINT/SIGTERM
// (or, with `exitWithStdin`, until its parent closes stdin). Runs in flight then end FAILED,
// resumable, after their rank 0 had a moment to checkpoint where it stopped; exit 0. A second
// signal exits at once (130 or 143).
import { openStore } from '../src/store/index.js';
import type { ServerTls } from '../src/rpc/index.js';
import { redactNatsUrl } from '../src/collective/nats-url.js';
import { onStopSignals, signalExitCode } from '../src/util/signals.js';
import { createCoordinatorServer } from './server.js';
import { startMonitorHttp, type MonitorHttpOptions, type StartedMonitor } from './http.js';
import type { CoordinatorOptions } from './options.js';
import type { LogLine } from '../src/util/log.js';

export interface RunCoordinatorOptions {
  host: string;
  /** 0: a free port (announced on stdout). */
  port: number;
  store: string;
  token: string;
  /** Serve TLS (mutual TLS when it carries a CA); absent: plaintext. */
  tls?: ServerTls;
  coordinator: Partial<CoordinatorOptions>;
  /** The monitoring port (dashboard at /, Prometheus at /metrics); absent: none. */
  http?: MonitorHttpOptions;
  /**
   * On the way out, how long rank 0 of each run in flight gets to checkpoint where it stopped
   * (DEFAULT_STOP_GRACE_MS); the runs are recorded FAILED, resumable, either way.
   */
  stopGraceMs?: number;
  /** Stop when stdin ends (a launcher's lifeline: no orphan if the launcher dies). */
  exitWithStdin: boolean;
  /** Log lines (stderr, the command's logger). */
  log: LogLine;
  /** One JSON line `{"listening": port, "http": port}` once bound (stdout; `http` only with a monitor). */
  announce: (line: string) => void;
}

/** How long a stopping coordinator waits for its runs' stop checkpoints. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

export async function runCoordinator(o: RunCoordinatorOptions): Promise<number> {
  const store = openStore(o.store);
  const server = createCoordinatorServer({
    db: store.db,
    token: o.token,
    options: o.coordinator,
    log: o.log,
    ...(o.tls ? { tls: o.tls } : {}),
  });
  let port: number;
  let monitor: StartedMonitor | null = null;
  try {
    port = await server.listen(o.host, o.port);
    if (o.http) monitor = await startMonitorHttp({ coordinator: server.coordinator, db: store.db, grpc: server, log: o.log }, o.http);
  } catch (err) {
    await server.shutdown(0);
    store.close();
    throw err;
  }
  const security = o.tls ? (o.tls.ca ? 'mutual TLS' : 'TLS') : 'plaintext';
  o.log(
    `coordinator listening on ${o.host}:${port} (${security}, store ${store.path}, nats ${redactNatsUrl(o.coordinator.natsUrl ?? 'default')}, checkpoints ${o.coordinator.checkpointStore ?? 'local'})`,
  );
  if (monitor) o.log(`dashboard ${monitor.url} (Prometheus metrics at ${monitor.url}metrics)`);
  // Signal handlers before the announcement: a launcher may signal as soon as it reads it.
  // SIGINT and SIGTERM alike: the first stops (runs in flight recorded resumable), a second leaves at once
  let removeSignals: () => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    removeSignals = onStopSignals({ first: resolve, again: (signal) => process.exit(signalExitCode(signal)) });
    if (o.exitWithStdin) {
      process.stdin.on('end', () => resolve('stdin closed'));
      process.stdin.on('error', () => resolve('stdin closed'));
      process.stdin.resume();
    }
  });
  o.announce(JSON.stringify({ listening: port, ...(monitor ? { http: monitor.port } : {}) }));
  const signal = await stopped;
  o.log(`coordinator stopping (${signal})`);
  // health NOT_SERVING and /readyz 503 first, for as long as the rest takes; /healthz stays 200.
  // RPCs are still served while the runs stop, so rank 0 can record its stop checkpoint.
  server.drain();
  await server.coordinator.stopActive(`coordinator stopped (${signal})`, o.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
  await server.shutdown(1000);
  await monitor?.close();
  store.close();
  removeSignals();
  if (o.exitWithStdin) process.stdin.pause();
  return 0;
}
