import type { AsyncQueue } from '../src/util/queue.js';
import type { ClusterEvent, WatchRequest } from '../src/rpc/index.js';
import type { ClusterSnapshot } from './coordinator.js';

/** The shortest snapshot interval a watcher may ask for; smaller requests are raised to it. */
export const MIN_SNAPSHOT_INTERVAL_MS = 100;

export interface WatchSource {
  watch(runId: string): AsyncQueue<ClusterEvent>;
  snapshot(): ClusterSnapshot;
}

/**
 * A WatchCluster stream: the coordinator's events, and when the request asks for them
 * (`snapshot_interval_ms` > 0) a `snapshot` event (workers and active runs as they are,
 * heartbeat ages included) at once and then every interval, so a monitor that connects
 * mid-run sees every worker and keeps its ages current. The timer stops with the stream.
 */
export function watchWithSnapshots(
  source: WatchSource,
  req: Pick<WatchRequest, 'run_id'> & { snapshot_interval_ms?: number },
): AsyncQueue<ClusterEvent> {
  const queue = source.watch(req.run_id);
  const interval = req.snapshot_interval_ms ?? 0;
  if (interval <= 0) return queue;
  const push = () =>
    queue.push({ kind: 'snapshot', run_id: req.run_id, detail_json: JSON.stringify(source.snapshot()), at: new Date().toISOString() });
  push();
  const timer = setInterval(push, Math.max(MIN_SNAPSHOT_INTERVAL_MS, interval));
  timer.unref();
  queue.onStop(() => clearInterval(timer));
  return queue;
}
