// Heartbeats from a thread of their own, so a long synchronous step (tfjs holds the main
// thread) cannot silence them; if the thread cannot start, from the main thread instead.
import { Worker } from 'node:worker_threads';
import type { ClientTls, CoordinatorClient } from '../src/rpc/index.js';
import type { LogLine } from '../src/util/log.js';

export interface HeartbeatThreadData {
  coordinator: string;
  token: string;
  tls: ClientTls | null;
  workerId: string;
  intervalMs: number;
}

export interface Heartbeat {
  /** Ends the stream (waits up to ~1 s). */
  stop(): Promise<void>;
}

function threadEntry(): { ts: boolean; file: string } {
  const ts = import.meta.url.endsWith('.ts');
  return { ts, file: new URL(`./heartbeat-thread.${ts ? 'ts' : 'js'}`, import.meta.url).href };
}

function mainThreadHeartbeat(client: CoordinatorClient, workerId: string, intervalMs: number): Heartbeat {
  const hb = client.heartbeat();
  hb.send({ worker_id: workerId });
  const timer = setInterval(() => hb.send({ worker_id: workerId }), intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.race([hb.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
    },
  };
}

/** Starts heartbeating `workerId`; resolves once the first heartbeat is on its way. */
export async function startHeartbeat(client: CoordinatorClient, data: HeartbeatThreadData, log: LogLine): Promise<Heartbeat> {
  const { ts, file } = threadEntry();
  let worker: Worker;
  try {
    worker = ts
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`,
          { eval: true, workerData: data },
        )
      : new Worker(new URL(file), { workerData: data });
  } catch (err) {
    log(`heartbeat thread unavailable (${(err as Error).message}); heartbeating from the main thread`, 'warn');
    return mainThreadHeartbeat(client, data.workerId, data.intervalMs);
  }
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const started = await new Promise<boolean>((resolve) => {
    worker.on('message', (m: { type: string; error?: string }) => {
      if (m.type === 'started') resolve(true);
      else if (m.type === 'closed' && m.error) log(`heartbeat stream closed: ${m.error}`, 'warn');
    });
    worker.once('error', (err) => {
      log(`heartbeat thread failed (${err.message}); heartbeating from the main thread`, 'warn');
      resolve(false);
    });
    worker.once('exit', () => resolve(false));
  });
  if (!started) {
    await worker.terminate().catch(() => undefined);
    return mainThreadHeartbeat(client, data.workerId, data.intervalMs);
  }
  return {
    async stop() {
      worker.postMessage({ type: 'stop' });
      const timer = setTimeout(() => void worker.terminate(), 1500);
      await exited;
      clearTimeout(timer);
    },
  };
}
