import assert from 'node:assert/strict';
import { Coordinator, createCoordinatorServer, parseCoordinatorOptions, type CoordinatorOptions } from '../../coordinator/index.js';
import { createCoordinatorMetrics } from '../../coordinator/metrics.js';
import { connectCoordinator, type CoordinatorClient, type CoordinatorClientOptions, type ServerTls } from '../../src/rpc/index.js';
import { openStore } from '../../src/store/index.js';

/**
 * A coordinator (token `tok`) on a loopback port over a store opened at `storePath`, and a client
 * connected to it; client, server and store are closed when `t` ends.
 */
export async function startTestCoordinator(t: { after(fn: () => unknown): void }, storePath: string, options: Partial<CoordinatorOptions>) {
  const store = openStore(storePath);
  const server = createCoordinatorServer({ db: store.db, token: 'tok', options });
  const address = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
  const client = connectCoordinator(address, { token: 'tok' });
  t.after(async () => {
    client.close();
    await server.shutdown(200);
    store.close();
  });
  return { store, server, address, client };
}

/**
 * A Coordinator (no server: its handlers are called directly) over a store opened at `storePath`,
 * with its Prometheus metrics (no process metrics); all closed when `t` ends.
 */
export function coordinatorWithMetrics(t: { after(fn: () => unknown): void }, storePath: string) {
  const store = openStore(storePath);
  const coordinator = new Coordinator({ db: store.db, options: parseCoordinatorOptions({}) });
  const metrics = createCoordinatorMetrics({ coordinator, db: store.db, processMetrics: false });
  t.after(() => {
    metrics.close();
    coordinator.close();
    store.close();
  });
  return { store, coordinator, metrics };
}

/**
 * An in-process coordinator on 127.0.0.1 over an in-memory store, its log lines collected in
 * `logs`; `connect` opens clients to it (5 s call timeout). Clients, server and store are
 * closed when `t` ends.
 */
export async function startLoggedCoordinator(
  t: { after(fn: () => unknown): void },
  server: { token: string; options?: Partial<CoordinatorOptions>; tls?: ServerTls | null },
) {
  const store = openStore(':memory:');
  const logs: string[] = [];
  const coordinator = createCoordinatorServer({
    db: store.db,
    token: server.token,
    options: server.options ?? {},
    log: (l) => logs.push(l),
    ...(server.tls ? { tls: server.tls } : {}),
  });
  const port = await coordinator.listen('127.0.0.1', 0);
  const clients: CoordinatorClient[] = [];
  const connect = (options: Omit<CoordinatorClientOptions, 'callTimeoutMs'>, address = `127.0.0.1:${port}`) => {
    const c = connectCoordinator(address, { callTimeoutMs: 5000, ...options });
    clients.push(c);
    return c;
  };
  t.after(async () => {
    for (const c of clients) c.close();
    await coordinator.shutdown(200);
    store.close();
  });
  return { store, server: coordinator, logs, port, connect };
}

/** The error `p` rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected the call to fail');
}
