// The coordinator's monitoring port (plain HTTP, read-only): `/` the dashboard, `/metrics` the
// Prometheus exposition, `/events` server-sent events for the dashboard, `/api/state` and
// `/api/runs/<id>/epochs` as JSON, `/healthz` and `/readyz` for probes. Built, then bound by
// `listen` (like the gRPC server).
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listEpochMetrics, listRuns, RunNotFoundError, getRun, type StoreDb } from '../src/store/index.js';
import type { Coordinator } from './coordinator.js';
import { UserError } from '../src/util/errors.js';
import { readiness } from './health.js';
import { createCoordinatorMetrics, type CoordinatorMetrics } from './metrics.js';
import type { LogLine } from '../src/util/log.js';

export interface MonitorHttpDeps {
  coordinator: Coordinator;
  db: StoreDb;
  /** The coordinator's gRPC server, whose state `/readyz` reports. */
  grpc: { readonly accepting: boolean };
  /** Given: the caller closes it; absent: one is made (with process metrics) and closed with the server. */
  metrics?: CoordinatorMetrics;
  /** How often `/events` pushes the worker table (`state` events). */
  stateIntervalMs?: number;
  log?: LogLine;
}

export interface MonitorHttpServer {
  /** Binds and resolves with the port (a free one for 0). */
  listen(host: string, port: number): Promise<number>;
  /** Ends every event stream and stops listening. */
  close(): Promise<void>;
}

/** Runs the dashboard lists besides the active ones. */
const RECENT_RUNS = 10;

/** The dashboard files: beside this module in a checkout, or from dist/coordinator back to the sources. */
function dashboardDir(): string {
  const tried: string[] = [];
  for (const rel of ['./dashboard/', '../../coordinator/dashboard/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
    tried.push(dir);
  }
  throw new Error(`the dashboard files are missing (looked in ${tried.join(', ')})`);
}

/** One epoch's curve point as the dashboard plots it. */
export interface CurvePoint {
  epoch: number;
  trainLoss: number;
  trainAcc: number;
  testLoss: number | null;
  testAcc: number | null;
}

function curve(db: StoreDb, runId: string): CurvePoint[] {
  return listEpochMetrics(db, runId).map((m) => ({
    epoch: m.epoch,
    trainLoss: m.trainLoss,
    trainAcc: m.trainAcc,
    testLoss: m.testLoss,
    testAcc: m.testAcc,
  }));
}

/** Workers, active runs, recent runs from the store, and the curves of the active and latest runs. */
export function dashboardState(coordinator: Coordinator, db: StoreDb) {
  const snap = coordinator.snapshot();
  const recent = listRuns(db, { limit: RECENT_RUNS }).map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status,
    model: r.model,
    precision: r.precision,
    dataset: r.dataset,
    epochs: r.config.train.epochs,
    createdAt: r.createdAt,
    finalTestAcc: r.finalTestAcc,
  }));
  const curveIds = new Set([...snap.runs.map((r) => r.id), ...recent.slice(0, 1).map((r) => r.id)]);
  const curves = Object.fromEntries([...curveIds].map((id) => [id, curve(db, id)]));
  return { at: new Date().toISOString(), workers: snap.workers, active: snap.runs, recent, curves };
}

export function createMonitorHttpServer(deps: MonitorHttpDeps): MonitorHttpServer {
  const { coordinator, db } = deps;
  const dir = dashboardDir();
  const assets = new Map([
    ['/', { type: 'text/html; charset=utf-8', body: readFileSync(join(dir, 'index.html')) }],
    ['/dashboard.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(join(dir, 'dashboard.js')) }],
  ]);
  const metrics = deps.metrics ?? createCoordinatorMetrics({ coordinator, db });
  const streams = new Set<() => void>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify(body)}\n`);
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    send('snapshot', dashboardState(coordinator, db));
    const queue = coordinator.events.watch('');
    const timer = setInterval(() => {
      const snap = coordinator.snapshot();
      send('state', { at: new Date().toISOString(), workers: snap.workers, active: snap.runs });
    }, deps.stateIntervalMs ?? 1000);
    const end = () => {
      clearInterval(timer);
      queue.stop();
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    req.on('close', end);
    void (async () => {
      for await (const ev of queue) {
        // Progress carries per-step timings for /metrics; dashboards get its effect in `state`.
        if (ev.kind === 'progress') continue;
        send(ev.kind, { runId: ev.run_id, at: ev.at, ...(JSON.parse(ev.detail_json) as Record<string, unknown>) });
      }
    })().catch(end);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end(
        `${req.method} is not supported here; this port is read-only (GET ${[...assets.keys(), '/metrics', '/events', '/api/state', '/healthz', '/readyz'].join(', ')})\n`,
      );
      return;
    }
    const asset = assets.get(path === '/index.html' ? '/' : path);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
      res.end(asset.body);
    } else if (path === '/healthz') {
      // answering at all is the check: the process runs and its event loop turns
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('ok\n');
    } else if (path === '/readyz') {
      const r = readiness({ coordinator, db, grpc: deps.grpc });
      json(res, r.ready ? 200 : 503, r);
    } else if (path === '/metrics') {
      const text = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(text);
    } else if (path === '/events') {
      events(req, res);
    } else if (path === '/api/state') {
      json(res, 200, dashboardState(coordinator, db));
    } else if (/^\/api\/runs\/[^/]+\/epochs$/.test(path)) {
      const id = decodeURIComponent(path.split('/')[3]!);
      try {
        const run = getRun(db, id);
        json(res, 200, { runId: run.id, epochs: curve(db, run.id) });
      } catch (err) {
        if (!(err instanceof RunNotFoundError)) throw err;
        json(res, 404, { error: err.message });
      }
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`no ${path} here: GET / (dashboard), /metrics (Prometheus), /events (server-sent events), /api/state, /healthz, /readyz\n`);
    }
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      deps.log?.(`monitor http: ${req.url}: ${(err as Error).message}`, 'warn');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${(err as Error).message}\n`);
    });
  });

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        for (const end of [...streams]) end();
        if (!deps.metrics) metrics.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface MonitorHttpOptions {
  /** Address to bind (127.0.0.1 keeps the unauthenticated monitor local). */
  host: string;
  /** 0: a free port. */
  port: number;
  /**
   * The port is the default one, not asked for: when it is taken, log a warning and serve no
   * monitor rather than refuse to start the control plane.
   */
  optional?: boolean;
}

export interface StartedMonitor {
  port: number;
  /** `http://host:port/` (a wildcard bind is shown as 127.0.0.1). */
  url: string;
  close(): Promise<void>;
}

/**
 * Builds and binds the monitor; a port in use or a bad address is a user error naming --http-port /
 * --http-host, except that an `optional` port in use gives null (and a logged warning).
 */
export async function startMonitorHttp(deps: MonitorHttpDeps, o: MonitorHttpOptions): Promise<StartedMonitor | null> {
  const server = createMonitorHttpServer(deps);
  let port: number;
  try {
    port = await server.listen(o.host, o.port);
  } catch (err) {
    await server.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' && o.optional) {
      deps.log?.(
        `warning: no dashboard or /metrics: port ${o.port} is in use on ${o.host} (pass --http-port <n>, 0 for a free one, or --no-http)`,
        'warn',
      );
      return null;
    }
    if (code === 'EADDRINUSE')
      throw new UserError(`--http-port ${o.port}: the port is in use on ${o.host}; pick another (0: a free one) or pass --no-http`, {
        cause: err,
      });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new UserError(
        `--http-host ${o.host} / --http-port ${o.port}: cannot listen there (${code}); e.g. --http-host 127.0.0.1 --http-port 9464`,
        { cause: err },
      );
    }
    throw err;
  }
  const shown = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  return { port, url: `http://${shown}:${port}/`, close: () => server.close() };
}
