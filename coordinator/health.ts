// What /readyz reports: whether this coordinator can serve its control plane now. /healthz and the
// gRPC health service (`src/rpc/health.ts`) need nothing from here.
import { storeIsOpen, type StoreDb } from '../src/store/index.js';
import type { Coordinator } from './coordinator.js';

/** Each check's verdict; only the short words below, never a path, url or credential. */
export interface ReadinessChecks {
  /** The experiment database's connection answers a query. */
  store: 'open' | 'closed';
  /** The gRPC port is bound and the server is not shutting down. */
  grpc: 'serving' | 'not serving';
  /**
   * The coordinator's own NATS connection (the checkpoint object store's): 'not used' when it holds
   * none and needs none (the all-reduce's connections are the workers'); see `Coordinator.natsConnection`.
   */
  nats: 'not used' | 'connecting' | 'connected' | 'disconnected';
}

export interface Readiness {
  ready: boolean;
  checks: ReadinessChecks;
}

export interface ReadinessDeps {
  coordinator: Coordinator;
  db: StoreDb;
  grpc: { readonly accepting: boolean };
}

/** Ready when the store is open, the gRPC server accepts calls and any NATS connection the coordinator needs is up. */
export function readiness({ coordinator, db, grpc }: ReadinessDeps): Readiness {
  const nats = coordinator.natsConnection();
  const checks: ReadinessChecks = {
    store: storeIsOpen(db) ? 'open' : 'closed',
    grpc: grpc.accepting ? 'serving' : 'not serving',
    nats: nats === 'none' ? 'not used' : nats,
  };
  const ready = checks.store === 'open' && checks.grpc === 'serving' && (checks.nats === 'not used' || checks.nats === 'connected');
  return { ready, checks };
}
