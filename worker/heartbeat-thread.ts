// The heartbeat stream, run in its own thread (see heartbeat.ts): a training step or an
// evaluation that holds the main thread for seconds must not make a healthy worker look dead.
import { parentPort, workerData } from 'node:worker_threads';
import { connectCoordinator, type ClientTls } from '../src/rpc/index.js';
import type { HeartbeatThreadData } from './heartbeat.js';

const data = workerData as HeartbeatThreadData;
// Buffers arrive as plain Uint8Arrays through the structured clone.
const buf = (b: Uint8Array | null): Buffer | null => (b ? Buffer.from(b) : null);
const tls: ClientTls | undefined = data.tls
  ? {
      ca: buf(data.tls.ca),
      cert: buf(data.tls.cert),
      key: buf(data.tls.key),
      ...(data.tls.serverName ? { serverName: data.tls.serverName } : {}),
    }
  : undefined;
const client = connectCoordinator(data.coordinator, { token: data.token, ...(tls ? { tls } : {}) });
const hb = client.heartbeat();
const send = () => hb.send({ worker_id: data.workerId });
send();
const timer = setInterval(send, data.intervalMs);
hb.closed.then(
  () => parentPort!.postMessage({ type: 'closed' }),
  (err: Error) => parentPort!.postMessage({ type: 'closed', error: err.message }),
);
parentPort!.postMessage({ type: 'started' });
parentPort!.on('message', (m: { type: string }) => {
  if (m.type !== 'stop') return;
  clearInterval(timer);
  void Promise.race([hb.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]).then(() => {
    client.close();
    parentPort!.close();
  });
});
