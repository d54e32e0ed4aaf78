import { createCoordinatorServer, type CoordinatorOptions } from '../../coordinator/index.js';
import { connectCoordinator } from '../../src/rpc/index.js';
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
