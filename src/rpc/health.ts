// The serving status behind the standard gRPC health service (`grpc.health.v1.Health`), without
// the transport: `src/rpc/grpc.ts` answers Check from `get` and streams Watch from `watch`.
import { AsyncQueue } from '../util/queue.js';

/** The statuses of `grpc.health.v1.HealthCheckResponse.ServingStatus` a service can have. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** What Watch reports: a service's status, or SERVICE_UNKNOWN for a name this server does not serve. */
export type WatchedStatus = ServingStatus | 'SERVICE_UNKNOWN';

/** The coordinator's service as health checks name it ('' asks about the whole server). */
export const COORDINATOR_SERVICE_NAME = 'bnn.v1.Coordinator';

/** Serving status per service name; each change is pushed to that name's watchers (the same value twice is not a change). */
export class HealthStatuses {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<AsyncQueue<WatchedStatus>>>();

  /** Starts with every one of `services` (and '', the server as a whole) NOT_SERVING. */
  constructor(services: readonly string[]) {
    for (const s of ['', ...services]) this.statuses.set(s, 'NOT_SERVING');
  }

  /** The status of `service`, or undefined for a name this server does not serve. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Sets every known service (the server as a whole included) to `status`. */
  setAll(status: ServingStatus): void {
    for (const s of this.statuses.keys()) this.set(s, status);
  }

  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const q of this.watchers.get(service) ?? []) q.push(status);
  }

  /** The current status of `service` at once, then each change; stop the queue to stop watching. */
  watch(service: string): AsyncQueue<WatchedStatus> {
    const queue = new AsyncQueue<WatchedStatus>();
    queue.push(this.statuses.get(service) ?? 'SERVICE_UNKNOWN');
    let set = this.watchers.get(service);
    if (!set) {
      set = new Set();
      this.watchers.set(service, set);
    }
    const watchers = set;
    watchers.add(queue);
    queue.onStop(() => {
      watchers.delete(queue);
      if (watchers.size === 0) this.watchers.delete(service);
    });
    return queue;
  }

  /** Ends every watch (their streams end after the statuses already pushed). */
  close(): void {
    for (const set of [...this.watchers.values()]) for (const q of [...set]) q.stop();
  }
}
