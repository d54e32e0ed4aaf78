#!/usr/bin/env node
// Container healthcheck for `bnn coordinator` (no curl or grpc_health_probe in the image):
//   node /app/deploy/docker/healthcheck.mjs [--grpc host:port] [--http url]...
// --grpc: grpc.health.v1.Health/Check for service "" must answer SERVING (plaintext; no token needed).
// --http: a GET must answer 200 (e.g. http://127.0.0.1:9464/readyz). Every check given must pass.
// Exit 0 when all pass, 1 otherwise, with one line per failed check on stderr.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const TIMEOUT_MS = 4000;
const appRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function parseArgs(argv) {
  const checks = [];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if ((flag !== '--grpc' && flag !== '--http') || value === undefined) {
      throw new Error(`usage: healthcheck.mjs [--grpc host:port] [--http url]... (got ${JSON.stringify(argv.slice(i))})`);
    }
    checks.push({ kind: flag.slice(2), target: value });
  }
  if (checks.length === 0) throw new Error('healthcheck.mjs: give at least one --grpc host:port or --http url');
  return checks;
}

function checkGrpc(address) {
  const def = protoLoader.loadSync(path.join(appRoot, 'proto', 'grpc', 'health', 'v1', 'health.proto'), {
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const { Health } = grpc.loadPackageDefinition(def).grpc.health.v1;
  const client = new Health(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.Check({ service: '' }, { deadline: Date.now() + TIMEOUT_MS }, (err, res) => {
      client.close();
      if (err) resolve(`grpc ${address}: ${err.details || err.message}`);
      else resolve(res.status === 'SERVING' ? null : `grpc ${address}: ${res.status}`);
    });
  });
}

async function checkHttp(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = (await res.text()).trim();
    return res.status === 200 ? null : `http ${url}: ${res.status} ${body}`;
  } catch (err) {
    return `http ${url}: ${err.cause?.code ?? err.message}`;
  }
}

try {
  const checks = parseArgs(process.argv.slice(2));
  const failures = (await Promise.all(checks.map((c) => (c.kind === 'grpc' ? checkGrpc(c.target) : checkHttp(c.target))))).filter(
    (f) => f !== null,
  );
  for (const f of failures) process.stderr.write(`unhealthy: ${f}\n`);
  process.exit(failures.length === 0 ? 0 : 1);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
