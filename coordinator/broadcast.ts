import { AsyncQueue } from '../src/util/queue.js';
import type { ClusterEvent } from '../src/rpc/index.js';

/** Fans cluster events out to every watcher (one queue each, dropped when the watcher goes). */
export class EventBroadcast {
  private readonly watchers = new Set<{ runId: string; queue: AsyncQueue<ClusterEvent> }>();

  publish(kind: string, runId: string, detail: Record<string, unknown>): void {
    const event: ClusterEvent = { kind, run_id: runId, detail_json: JSON.stringify(detail), at: new Date().toISOString() };
    for (const w of this.watchers) if (w.runId === '' || w.runId === runId) w.queue.push(event);
  }

  /** Events from now on; `runId` '' for all of them. */
  watch(runId: string): AsyncQueue<ClusterEvent> {
    const queue = new AsyncQueue<ClusterEvent>();
    const entry = { runId, queue };
    this.watchers.add(entry);
    queue.onStop(() => this.watchers.delete(entry));
    return queue;
  }

  close(): void {
    for (const w of [...this.watchers]) w.queue.stop();
  }
}
