import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CLI_ENTRY, REPO_ROOT, runCli } from './helpers/cli.js';
import { writeTinyConfig } from './helpers/cluster.js';
import { tmpDir } from './helpers/tmp.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const ISO_MS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A real `bnn coordinator` on free ports: started, stopped with SIGTERM once it announced its port; its stderr lines. */
async function coordinatorLines(args: string[], env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', TSX, CLI_ENTRY, 'coordinator', '--port', '0', '--http-port', '0', ...args], {
    env: { ...process.env, BNN_CLUSTER_TOKEN: 'tok', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => lines.push(l));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('{"listening"')) resolve();
    });
    void closed.then(() => resolve());
  });
  child.kill('SIGTERM');
  const code = await closed;
  clearTimeout(killer);
  return { code, lines };
}

test('logging - bnn coordinator --log-format json: every stderr line is one JSON object with ts (ISO 8601 UTC, ms), level and msg', async (t) => {
  const dir = await tmpDir({ t });
  // the store from BNN_STORE, the format from the flag after the command
  const r = await coordinatorLines(['--log-format', 'json'], { BNN_STORE: dir.join('env.db') });
  assert.equal(r.code, 0, r.lines.join('\n'));
  assert.ok(r.lines.length >= 2, r.lines.join('\n'));
  for (const line of r.lines) {
    const record = JSON.parse(line) as Record<string, unknown>;
    assert.match(String(record.ts), ISO_MS_UTC, line);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(String(record.level)), line);
    assert.equal(typeof record.msg, 'string', line);
  }
  const messages = r.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
  assert.ok(
    messages.some((m) => m.startsWith('coordinator listening on 127.0.0.1:') && m.includes(dir.join('env.db'))),
    messages.join('\n'),
  );
  assert.ok(messages.includes('coordinator stopping (SIGTERM)'), messages.join('\n'));
});

test('logging - bnn coordinator (text, the default): every stderr line starts with a timestamp and a level; a typed --store beats BNN_STORE', async (t) => {
  const dir = await tmpDir({ t });
  const r = await coordinatorLines(['--store', dir.join('flag.db')], { BNN_STORE: dir.join('env.db'), BNN_LOG_FORMAT: 'text' });
  assert.equal(r.code, 0, r.lines.join('\n'));
  assert.ok(r.lines.length >= 2, r.lines.join('\n'));
  for (const line of r.lines) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) {1,2}\S/, line);
  assert.ok(
    r.lines.some((l) => / info {2}coordinator listening on .*flag\.db/.test(l)),
    r.lines.join('\n'),
  );
});

test('logging - a bad --log-format is bad usage (exit 2) naming the valid formats; in json mode an error is a JSON record', async () => {
  const [bad, badEquals, failed] = await Promise.all([
    runCli(['coordinator', '--log-format', 'xml', '--token', 't']),
    runCli(['--log-format=JSONL', 'worker', '--coordinator', '127.0.0.1:1', '--token', 't']),
    runCli(['coordinator', '--log-format', 'json', '--port', 'nope', '--token', 't']),
  ]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^bnn: error: --log-format: 'xml' is not valid; expected one of text, json$/m);
  assert.equal(badEquals.code, 2, badEquals.stderr);
  assert.match(badEquals.stderr, /--log-format: 'JSONL' is not valid; expected one of text, json/);
  assert.equal(failed.code, 2, failed.stderr);
  const lines = failed.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, failed.stderr);
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual([record.level, record.type, record.exitCode], ['error', 'FlagError', 2]);
  assert.match(String(record.msg), /^--port: 'nope' is not valid/);
});

test('logging - bnn launch --local in json: its own lines and the relayed lines of its children are each one JSON record; variables meant for another cluster stay out of the children', async (t) => {
  const dir = await tmpDir({ t });
  const config = writeTinyConfig(dir.path, { epochs: 1 });
  // BNN_COORDINATOR is ignored with --local typed; BNN_NATS_URL, inherited, would send the workers to a dead port
  const r = await runCli(['--log-format', 'json', 'launch', '--local', '2', config], {
    cwd: dir.path,
    timeoutMs: 120_000,
    env: { BNN_COORDINATOR: '127.0.0.1:1', BNN_NATS_URL: 'nats://127.0.0.1:9', BNN_CLUSTER_DIR: dir.join('clusters') },
  });
  assert.equal(r.code, 0, r.stderr);
  const records = r.stderr
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const rec of records) assert.ok(ISO_MS_UTC.test(String(rec.ts)) && typeof rec.level === 'string' && typeof rec.msg === 'string');
  const sources = new Set(records.map((rec) => rec.source).filter((s) => s !== undefined));
  assert.deepEqual([...sources].sort(), ['coordinator', 'worker 0', 'worker 1']);
  assert.ok(
    records.some((rec) => rec.source === 'worker 0' && typeof rec.worker === 'string'),
    'a worker record keeps its own fields',
  );
  assert.ok(
    records.some((rec) => rec.source === undefined && String(rec.msg).startsWith('bnn: run ')),
    "the launcher's own lines",
  );
  assert.match(r.stdout, /COMPLETED/);
});
