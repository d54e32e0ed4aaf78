// Real servers for the manifests' probes: nats-servers from the ConfigMap's nats.conf, and a
// raw NATS client login (the server's auth as the Secret sets it).
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { healthProtoPath } from '../../src/rpc/index.js';

/** `n` free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** nats-server with `conf`, every listener on 127.0.0.1 (flags override the config's ports and routes); killed when `t` ends. */
export function startNatsFromConf(
  t: { after(fn: () => unknown): void },
  conf: string,
  ports: { client: number; monitor: number; cluster: number; routes: number[] },
  env: Record<string, string>,
): ChildProcess {
  const args = ['-c', conf, '-a', '127.0.0.1', '-p', String(ports.client), '-m', String(ports.monitor)];
  args.push('--cluster', `nats://127.0.0.1:${ports.cluster}`, '--routes', ports.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
  const child = spawn(process.env.NATS_SERVER_BIN ?? 'nats-server', args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
  child.on('exit', (code) => {
    if (code !== null && code !== 0) process.stderr.write(`nats-server exited ${code}:\n${log}\n`);
  });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  });
  return child;
}

/** The server's answer to CONNECT with `user`/`pass` and a PING: `PONG`, or its `-ERR` line. */
export function natsLogin(port: number, user: string, pass: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let sent = false;
    const timer = setTimeout(() => finish(new Error(`no answer from nats on ${port}: ${buf}`)), 5000);
    const finish = (result: string | Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    sock.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      if (!sent && buf.includes('\r\n')) {
        sent = true;
        sock.write(`CONNECT ${JSON.stringify({ user, pass, verbose: false, pedantic: false })}\r\nPING\r\n`);
      }
      const answer = buf.split('\r\n').find((l) => l === 'PONG' || l.startsWith('-ERR'));
      if (answer) finish(answer);
    });
    sock.on('error', finish);
  });
}

/** `grpc.health.v1.Health/Check` as the kubelet's gRPC probe calls it: plaintext, no metadata. */
export async function grpcHealth(address: string, service: string): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath(), { keepCase: true, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  try {
    return await new Promise((resolve, reject) =>
      client.Check({ service }, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res?.status ?? ''))),
    );
  } finally {
    client.close();
  }
}

/** Polls `fn` until it returns a value, or fails naming `what` and the last value seen. */
export async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>, last = () => ''): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${last()}`);
}
