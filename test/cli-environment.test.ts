import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { ENV_VARS } from '../src/config/environment.js';
import { commandContext } from '../src/cli/command.js';
import { buildProgram } from '../src/cli/index.js';
import { REPO_ROOT, runCli } from './helpers/cli.js';

/** Every option with an environment fallback: variable → the flag and the commands that have it. */
function programEnvironment(): Map<string, { flags: Set<string>; commands: Set<string> }> {
  const found = new Map<string, { flags: Set<string>; commands: Set<string> }>();
  const visit = (cmd: Command) => {
    for (const o of cmd.options) {
      if (!o.envVar) continue;
      const e = found.get(o.envVar) ?? { flags: new Set(), commands: new Set() };
      e.flags.add(o.long!);
      e.commands.add(cmd.name());
      found.set(o.envVar, e);
    }
    cmd.commands.forEach(visit);
  };
  visit(buildProgram(commandContext()));
  return found;
}

/** The rows of docs/environment.md's table: variable, flag, commands (as written). */
function documentedEnvironment(): Map<string, { flag: string; commands: string }> {
  const text = readFileSync(join(REPO_ROOT, 'docs', 'environment.md'), 'utf8');
  const rows = new Map<string, { flag: string; commands: string }>();
  for (const m of text.matchAll(/^\| `([A-Z0-9_]+)` \| `(--[a-z-]+)` \| ([^|]+) \|/gm)) {
    assert.ok(!rows.has(m[1]!), `${m[1]} is documented once`);
    rows.set(m[1]!, { flag: m[2]!, commands: m[3]!.trim() });
  }
  return rows;
}

test('environment - docs/environment.md lists exactly the variables the options read, with their flags and commands', () => {
  const program = programEnvironment();
  const docs = documentedEnvironment();
  assert.deepEqual([...docs.keys()].sort(), [...program.keys()].sort(), 'documented variables = variables of options');
  assert.deepEqual([...ENV_VARS].sort(), [...program.keys()].sort(), 'every name of ENV is read by an option');
  for (const [name, d] of docs) {
    const p = program.get(name)!;
    assert.deepEqual([...p.flags], [d.flag], `${name}: one flag, the documented one`);
    if (p.commands.has('bnn')) {
      assert.match(d.commands, /every command/, `${name} belongs to the program`);
      continue;
    }
    const listed = d.commands.split(',').map((c) => c.trim());
    assert.deepEqual(listed.sort(), [...p.commands].sort(), `${name}: the commands documented`);
  }
});

/** The options `bnn <args>` would run its command with (parsed by the real program, the action not run). */
async function parsedOptions(
  args: string[],
  env: Record<string, string>,
): Promise<{ opts: Record<string, unknown>; source(key: string): string | undefined }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const program = buildProgram(commandContext());
  let seen: Command | null = null;
  program.hook('preAction', (_self, actionCommand) => {
    seen = actionCommand;
    throw new Error('parsed');
  });
  try {
    await program.parseAsync(args, { from: 'user' }).catch((err: Error) => assert.equal(err.message, 'parsed'));
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  const cmd = seen as Command | null;
  assert.ok(cmd, `bnn ${args.join(' ')} reached its action`);
  return { opts: cmd.opts(), source: (key) => cmd.getOptionValueSource(key) };
}

test('environment - bnn coordinator: a variable sets the option, a typed flag overrides it, the default applies without either', async () => {
  const env = {
    BNN_COORDINATOR_HOST: '0.0.0.0',
    BNN_COORDINATOR_PORT: '6001',
    BNN_HTTP_HOST: '0.0.0.0',
    BNN_HTTP_PORT: '6002',
    BNN_STORE: '/data/env.db',
    BNN_NATS_URL: 'nats://a:4222,nats://b:4222',
    BNN_CLUSTER_TOKEN: 'env-token',
    BNN_CHECKPOINT_STORE: 'nats',
    BNN_CHECKPOINT_REPLICAS: '3',
  };
  const fromEnv = await parsedOptions(['coordinator'], env);
  assert.deepEqual(
    [fromEnv.opts.host, fromEnv.opts.port, fromEnv.opts.httpHost, fromEnv.opts.httpPort, fromEnv.opts.store, fromEnv.opts.nats],
    ['0.0.0.0', '6001', '0.0.0.0', '6002', '/data/env.db', ['nats://a:4222,nats://b:4222']],
  );
  assert.deepEqual([fromEnv.opts.token, fromEnv.opts.checkpointStore, fromEnv.opts.checkpointReplicas], ['env-token', 'nats', '3']);
  assert.equal(fromEnv.source('port'), 'env');

  const typed = await parsedOptions(
    ['coordinator', '--port', '7001', '--store', '/data/flag.db', '--nats', 'nats://c:4222', '--token', 't'],
    env,
  );
  assert.deepEqual(
    [typed.opts.port, typed.opts.store, typed.opts.nats, typed.opts.token],
    ['7001', '/data/flag.db', ['nats://c:4222'], 't'],
  );
  assert.equal(typed.source('port'), 'cli');
  assert.equal(typed.opts.httpPort, '6002', 'the variables of flags not typed still apply');

  const neither = await parsedOptions(['coordinator'], {});
  assert.deepEqual([neither.opts.port, neither.opts.store, neither.source('port')], ['50051', './runs/bnn.db', 'default']);
});

test('environment - bnn worker: BNN_COORDINATOR satisfies the required --coordinator; threads, backend and GPU from the environment, flags win', async () => {
  const env = {
    BNN_COORDINATOR: 'coord:50051',
    BNN_WORKER_THREADS: '4',
    BNN_WORKER_BACKEND: 'native',
    BNN_WORKER_GPU: '1',
    BNN_CLUSTER_TOKEN: 'tok',
  };
  const fromEnv = await parsedOptions(['worker'], env);
  assert.deepEqual(
    [fromEnv.opts.coordinator, fromEnv.opts.threads, fromEnv.opts.backend, fromEnv.opts.gpu, fromEnv.opts.token],
    ['coord:50051', '4', 'native', '1', 'tok'],
  );
  const typed = await parsedOptions(['worker', '--coordinator', 'other:1', '--threads', '2', '--backend', 'cpu', '--gpu', '0'], env);
  assert.deepEqual([typed.opts.coordinator, typed.opts.threads, typed.opts.backend, typed.opts.gpu], ['other:1', '2', 'cpu', '0']);
  const neither = await parsedOptions(['worker', '--coordinator', 'c:1'], {});
  assert.deepEqual([neither.opts.threads, neither.opts.backend, neither.opts.gpu], ['1', 'auto', undefined]);
});

test('environment - a bad value from a variable is bad usage naming the variable, its flag and what is valid (real processes)', async () => {
  const [port, backend, format, typed] = await Promise.all([
    runCli(['coordinator'], { env: { BNN_COORDINATOR_PORT: 'abc', BNN_CLUSTER_TOKEN: 't' } }),
    runCli(['worker'], { env: { BNN_COORDINATOR: '127.0.0.1:1', BNN_WORKER_BACKEND: 'gpu', BNN_CLUSTER_TOKEN: 't' } }),
    runCli(['coordinator'], { env: { BNN_LOG_FORMAT: 'yaml', BNN_CLUSTER_TOKEN: 't' } }),
    runCli(['coordinator', '--port', 'abc'], { env: { BNN_COORDINATOR_PORT: '1', BNN_CLUSTER_TOKEN: 't' } }),
  ]);
  assert.equal(port.code, 2, port.stderr);
  assert.match(port.stderr, /^bnn: error: BNN_COORDINATOR_PORT \(--port\): 'abc' is not valid; expected a port from 0 to 65535/m);
  assert.equal(backend.code, 2, backend.stderr);
  assert.match(
    backend.stderr,
    /^bnn: error: BNN_WORKER_BACKEND \(--backend\): 'gpu' is not valid; expected one of auto, tensorflow, native, wasm, cpu/m,
  );
  assert.equal(format.code, 2, format.stderr);
  assert.match(format.stderr, /^bnn: error: BNN_LOG_FORMAT \(--log-format\): 'yaml' is not valid; expected one of text, json$/m);
  assert.equal(typed.code, 2, typed.stderr);
  assert.match(typed.stderr, /^bnn: error: --port: 'abc' is not valid/m, 'a typed flag is named as the flag');
});
