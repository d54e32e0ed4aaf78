// deploy/docker and deploy/compose checked without a container engine: compose.yaml through a real
// Compose implementation where one is installed (docker compose, docker-compose, podman-compose),
// every `bnn` command line and BNN_* variable they use against the CLI itself, the Dockerfiles'
// stages, user and entrypoint, .dockerignore against .gitignore, the NATS configs with
// `nats-server -t`, the submitted run config with the config loader, and the coordinator
// healthcheck script against a real `bnn coordinator`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { buildProgram } from '../src/cli/index.js';
import { commandContext } from '../src/cli/command.js';
import { ENV_VARS } from '../src/config/environment.js';
import { loadConfig } from '../src/config/index.js';
import { spawnCli } from './helpers/cluster.js';
import { REPO_ROOT } from './helpers/cli.js';
import { tmpDir } from './helpers/tmp.js';

const COMPOSE_DIR = join(REPO_ROOT, 'deploy', 'compose');
const DOCKERFILES = ['deploy/docker/Dockerfile', 'deploy/docker/Dockerfile.cuda'];
const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), 'utf8');

// ---------- compose.yaml ----------

interface ComposeService {
  image?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  env_file?: string | string[];
  profiles?: string[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number | string; resources?: { reservations?: { devices?: Array<Record<string, unknown>> } } };
  depends_on?: Record<string, { condition: string }>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** `${VAR:-default}` → default (what Compose substitutes with VAR unset), recursively through the value. */
function interpolateDefaults(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _name: string, def: string) => def);
  if (Array.isArray(v)) return v.map(interpolateDefaults);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateDefaults(x)]));
  return v;
}

function composeFile(): ComposeFile {
  return interpolateDefaults(parseYaml(read('deploy/compose/compose.yaml'), { merge: true })) as ComposeFile;
}

/** The `bnn` argv a service of a bnn image runs (entrypoint after `bnn`, then command), or null for another image. */
function bnnArgv(svc: ComposeService): string[] | null {
  if (!svc.image?.startsWith('bnn:')) return null;
  const entry = svc.entrypoint ?? ['bnn'];
  assert.equal(entry[0], 'bnn', `a bnn image runs bnn (${svc.image}: ${entry.join(' ')})`);
  return [...entry.slice(1), ...(svc.command ?? [])];
}

const program = () => buildProgram(commandContext({ stdout: process.stdout, stderr: process.stderr }));

/**
 * Checks `argv` against the CLI's own commander program: the subcommand exists, every `--flag`
 * is one of its options (values consumed as commander would), no more positionals than it takes,
 * every required option present. Returns the problems found.
 */
function checkArgv(argv: readonly string[], where: string): string[] {
  const [name, ...rest] = argv;
  const cmd = program().commands.find((c: Command) => c.name() === name);
  if (!cmd) return [`${where}: no bnn subcommand ${JSON.stringify(name)}`];
  const problems: string[] = [];
  const seen = new Set<Option>();
  let positionals = 0;
  for (let i = 0; i < rest.length; i++) {
    const tok = rest[i]!;
    if (!tok.startsWith('--')) {
      positionals++;
      continue;
    }
    const [flag, inline] = tok.split('=', 2) as [string, string | undefined];
    const option = cmd.options.find((o) => o.long === flag);
    if (!option) {
      problems.push(`${where}: bnn ${name} has no option ${flag}`);
      continue;
    }
    seen.add(option);
    if (option.required && inline === undefined) {
      if (i + 1 >= rest.length || rest[i + 1]!.startsWith('--')) problems.push(`${where}: bnn ${name} ${flag} needs a value`);
      i++;
    }
  }
  if (positionals > cmd.registeredArguments.length)
    problems.push(`${where}: bnn ${name} takes ${cmd.registeredArguments.length} argument(s), given ${positionals}`);
  if (positionals < cmd.registeredArguments.filter((a) => a.required).length)
    problems.push(`${where}: bnn ${name} needs ${cmd.registeredArguments.length} argument(s), given ${positionals}`);
  for (const o of cmd.options) if (o.mandatory && !seen.has(o)) problems.push(`${where}: bnn ${name} needs ${o.long}`);
  return problems;
}

test('deploy - every bnn command line in compose.yaml is a real subcommand with real options', () => {
  const compose = composeFile();
  const argvs = Object.entries(compose.services)
    .map(([name, svc]) => [name, bnnArgv(svc)] as const)
    .filter((e): e is readonly [string, string[]] => e[1] !== null);
  assert.deepEqual(argvs.map(([n]) => n).sort(), ['coordinator', 'submit', 'worker', 'worker-gpu']);
  const problems = argvs.flatMap(([name, argv]) => checkArgv(argv, `service ${name}`));
  assert.deepEqual(problems, []);
  // the checker itself refuses what the CLI refuses
  assert.deepEqual(checkArgv(['coordinator', '--http-hots=0.0.0.0'], 'x'), ['x: bnn coordinator has no option --http-hots']);
  assert.deepEqual(checkArgv(['worker', '--threads', '1'], 'x'), ['x: bnn worker needs --coordinator']);
  assert.deepEqual(checkArgv(['lunch'], 'x'), ['x: no bnn subcommand "lunch"']);
});

test('deploy - the coordinator listens beyond loopback inside its container, probes gRPC and HTTP, and keeps its database on a volume', () => {
  const { services, volumes } = composeFile();
  const coord = services.coordinator!;
  const argv = coord.command!;
  const flag = (f: string) => argv[argv.indexOf(f) + 1];
  assert.equal(flag('--host'), '0.0.0.0');
  assert.equal(
    flag('--http-host'),
    '0.0.0.0',
    'the monitor binds 127.0.0.1 unless told: the healthcheck and the published port need 0.0.0.0',
  );
  assert.equal(flag('--checkpoint-store'), 'nats');
  assert.equal(flag('--nats')!.split(',').length, 3);
  const store = flag('--store')!;
  const volume = coord.volumes!.map((v) => v.split(':')).find(([, target]) => store.startsWith(`${target}/`));
  assert.ok(volume && volumes && volume[0]! in volumes, `the database ${store} is on a named volume (${coord.volumes})`);
  const hc = coord.healthcheck!.test.join(' ');
  assert.match(hc, new RegExp(`--grpc 127\\.0\\.0\\.1:${flag('--port')}`));
  for (const path of ['healthz', 'readyz']) assert.match(hc, new RegExp(`--http http://127\\.0\\.0\\.1:${flag('--http-port')}/${path}`));
  for (const p of coord.ports!) assert.match(p, /^127\.0\.0\.1:/, 'published ports bind loopback only');
  // the GPU profile reserves an NVIDIA device; workers scale with deploy.replicas
  const gpu = services['worker-gpu']!;
  assert.deepEqual(gpu.profiles, ['gpu']);
  assert.equal(gpu.deploy?.resources?.reservations?.devices?.[0]?.driver, 'nvidia');
  assert.equal(Number(services.worker!.deploy?.replicas), 2);
  for (const n of ['nats-1', 'nats-2', 'nats-3']) assert.equal(coord.depends_on?.[n]?.condition, 'service_healthy');
});

// ---------- BNN_* variables ----------

/** Non-test TypeScript and JavaScript under `dirs`, as one text. */
function sources(dirs: readonly string[]): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'build') walk(p);
      } else if (/\.(ts|mjs|js)$/.test(e.name) && !e.name.includes('.test.')) out.push(readFileSync(p, 'utf8'));
    }
  };
  for (const d of dirs) walk(join(REPO_ROOT, d));
  return out.join('\n');
}

/** Whether `code` reads environment variable `name` (process.env.X, env.X, env['X']), or it is a flag's fallback (src/config/environment.ts). */
const readsEnv = (code: string, name: string) =>
  (ENV_VARS as readonly string[]).includes(name) || new RegExp(`env\\??\\.${name}\\b|env\\[['"]${name}['"]\\]`).test(code);

test('deploy - every BNN_* variable the compose stack and the Dockerfiles set is one the program or its build reads', () => {
  const runtime = sources(['src', 'worker', 'coordinator']);
  const build = sources(['scripts', 'native']);
  // set for `bnn` processes: secrets.env (written by make-secrets.sh) and `environment:` entries
  const secretNames = [...read('deploy/compose/make-secrets.sh').matchAll(/^\s*echo "(BNN_\w+)=/gm)].map((m) => m[1]!);
  assert.deepEqual(secretNames.sort(), ['BNN_CLUSTER_TOKEN', 'BNN_NATS_PASS', 'BNN_NATS_USER']);
  const envNames = Object.values(composeFile().services).flatMap((s) => Object.keys(s.environment ?? {}));
  for (const name of [...secretNames, ...envNames])
    assert.ok(readsEnv(runtime, name), `nothing in src/, worker/ or coordinator/ reads ${name}`);
  // the NATS servers' credentials come from the same file
  for (const m of read('deploy/compose/nats/cluster.conf').matchAll(/\$(\w+)/g))
    assert.ok(secretNames.includes(m[1]!), `${m[1]} is in secrets.env`);
  // set in the images: read by the CLI, or by the native build (scripts/, native/)
  for (const file of DOCKERFILES) {
    for (const m of read(file).matchAll(/\b(BNN_\w+)=/g)) {
      assert.ok(readsEnv(runtime, m[1]!) || readsEnv(build, m[1]!), `${file}: nothing reads ${m[1]}`);
    }
  }
  assert.equal(readsEnv('process.env.BNN_NOT_READX', 'BNN_NOT_READ'), false);
  assert.equal(readsEnv('process.env.BNN_NOT_READ', 'BNN_NOT_READ'), true);
});

// ---------- Dockerfiles ----------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name: string | null;
  body: Instruction[];
}

/** Instructions (continuations joined, comments dropped) split into the global ARGs and the stages. */
function parseDockerfile(text: string): { globalArgs: string[]; stages: Stage[] } {
  const logical = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const globalArgs: string[] = [];
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = line.match(/^(\w+)\s+(.*)$/);
    assert.ok(m, `not an instruction: ${line}`);
    const [op, args] = [m[1]!.toUpperCase(), m[2]!];
    if (op === 'FROM') {
      const f = args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i);
      assert.ok(f, `FROM ${args}`);
      stages.push({ base: f[1]!, name: f[2] ?? null, body: [] });
    } else if (stages.length === 0) {
      assert.equal(op, 'ARG', `only ARG may precede the first FROM (${line})`);
      globalArgs.push(args.split('=')[0]!);
    } else stages.at(-1)!.body.push({ op, args });
  }
  return { globalArgs, stages };
}

/** The packages of `apt-get install` lines in a stage. */
const aptPackages = (stage: Stage) =>
  stage.body
    .filter((i) => i.op === 'RUN')
    .flatMap((i) =>
      [...i.args.matchAll(/apt-get install ((?:-\S+\s+)*)((?:[a-z0-9][a-z0-9.+-]*\s*)+)/g)].flatMap((m) => m[2]!.trim().split(/\s+/)),
    );

/** Checks of one Dockerfile's structure; the problems found. */
function dockerfileProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  const { globalArgs, stages } = parseDockerfile(text);
  const names = stages.map((s) => s.name);
  stages.forEach((s, i) => {
    const earlier = names.slice(0, i);
    const arg = s.base.match(/^\$\{(\w+)\}$/)?.[1];
    if (!earlier.includes(s.base) && !(arg && globalArgs.includes(arg)))
      problems.push(`${file}: stage ${s.name ?? i} is FROM ${s.base}: a base image must be an ARG (or an earlier stage)`);
    for (const c of s.body.filter((x) => x.op === 'COPY')) {
      const from = c.args.match(/--from=(\S+)/)?.[1];
      if (from && !earlier.includes(from)) problems.push(`${file}: COPY --from=${from} is not an earlier stage`);
    }
  });
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages.at(-1)!;
  if (!build) return [...problems, `${file}: no build stage`];
  const buildRuns = build.body.filter((i) => i.op === 'RUN').map((i) => i.args);
  for (const step of ['npm ci', 'npm run build:native', 'npm run build', 'npm prune --omit=dev'])
    if (!buildRuns.some((r) => r.includes(step))) problems.push(`${file}: the build stage never runs ${step}`);
  for (const pkg of ['g++', 'make', 'python3', 'libopenblas-dev', 'pkg-config'])
    if (!aptPackages(build).includes(pkg)) problems.push(`${file}: the build stage lacks ${pkg}`);
  if (runtime.name !== 'runtime') problems.push(`${file}: the last stage (the default target) is ${runtime.name}, not runtime`);
  const extra = aptPackages(runtime).filter((p) => !['libopenblas0', 'dataset-fashion-mnist'].includes(p));
  if (extra.length > 0) problems.push(`${file}: the runtime stage installs ${extra.join(' ')}`);
  const user = runtime.body
    .filter((i) => i.op === 'USER')
    .at(-1)
    ?.args.split(':')[0];
  if (!user || user === 'root' || user === '0') problems.push(`${file}: the runtime stage runs as ${user ?? 'root (no USER)'}`);
  const entry = runtime.body.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args;
  if (entry !== '["bnn"]' && entry !== '["node", "/app/bin/bnn.js"]') problems.push(`${file}: ENTRYPOINT ${entry}`);
  const runtimeCopies = runtime.body.filter((i) => i.op === 'COPY').map((i) => i.args);
  for (const wanted of [
    'node_modules',
    'dist/src',
    'native/build/Release/bnn_native.node',
    'bin',
    'proto',
    'drizzle',
    'coordinator/dashboard',
  ])
    if (!runtimeCopies.some((c) => c.split(/\s+/).some((w) => w.endsWith(wanted))))
      problems.push(`${file}: the runtime stage lacks ${wanted}`);
  return problems;
}

/** .dockerignore's patterns, normalised like .gitignore's (no leading or trailing slash). */
const ignorePatterns = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/^\//, '').replace(/\/$/, ''));

/** Whether `rel` (a path in the build context) is excluded by `patterns` (prefix or glob match, as Docker does). */
function ignored(rel: string, patterns: readonly string[]): boolean {
  const toRe = (p: string) => {
    const body = p
      .split(/(\*\*\/|\*|\?)/)
      .map((part) => ({ '**/': '(?:.*/)?', '*': '[^/]*', '?': '[^/]' })[part] ?? part.replace(/[.+^$()|[\]{}\\]/g, '\\$&'))
      .join('');
    return new RegExp(`^${body}(?:/.*)?$`);
  };
  let out = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (toRe(p.slice(1)).test(rel)) out = false;
    } else if (toRe(p).test(rel)) out = true;
  }
  return out;
}

test('deploy - the Dockerfiles: bases as ARGs, build then runtime stage, non-root user, bnn entrypoint, sources in the build context', () => {
  const patterns = ignorePatterns(read('.dockerignore'));
  for (const file of DOCKERFILES) {
    const text = read(file);
    assert.deepEqual(dockerfileProblems(file, text), []);
    // every file the build copies from the context exists and is not excluded from it
    for (const stage of parseDockerfile(text).stages) {
      for (const c of stage.body.filter((i) => i.op === 'COPY' && !i.args.includes('--from='))) {
        const srcs = c.args.split(/\s+/).slice(0, -1);
        for (const src of srcs) {
          assert.ok(existsSync(join(REPO_ROOT, src)), `${file}: COPY ${src}: no such path`);
          assert.equal(ignored(src, patterns), false, `${file}: COPY ${src} is excluded by .dockerignore`);
        }
      }
    }
  }
  assert.match(read('deploy/docker/Dockerfile.cuda'), /BNN_CUDA=1/, 'the CUDA image fails when its addon does not build');
  assert.match(read('deploy/docker/Dockerfile.cuda'), /bnn_cuda\.node/);
  // the checks catch what they are for
  const good = read('deploy/docker/Dockerfile');
  const broken = good
    .replace(/\nUSER bnn\n/, '\n')
    .replace('libopenblas0 dataset-fashion-mnist', 'libopenblas0 dataset-fashion-mnist curl');
  assert.deepEqual(dockerfileProblems('x', broken), ['x: the runtime stage installs curl', 'x: the runtime stage runs as root (no USER)']);
  assert.match(
    dockerfileProblems('x', good.replace(/FROM \$\{DEBIAN_IMAGE\} AS runtime/, 'FROM debian:bookworm AS runtime')).join(),
    /must be an ARG/,
  );
});

test('deploy - .dockerignore keeps what git ignores, the databases, checkpoints and secrets out of the build context', () => {
  const patterns = ignorePatterns(read('.dockerignore'));
  const gitignored = ignorePatterns(read('.gitignore'));
  // each pattern git ignores is in .dockerignore, or a path it names is left out by another one (a parent folder)
  for (const p of gitignored)
    assert.ok(patterns.includes(p) || ignored(p.replace(/^\//, ''), patterns), `.gitignore has ${p}; .dockerignore does not`);
  for (const rel of [
    '.git',
    'node_modules',
    'native/build',
    'native/cuda-addon/build',
    'dist',
    'runs/bnn.db',
    'x.db',
    'checkpoints',
    'deploy/compose/secrets.env',
    'deploy/k8s/base/secrets.env',
  ])
    assert.ok(ignored(rel, patterns), `${rel} is in the build context`);
  for (const rel of ['src/cli/main.ts', 'native/binding.gyp', 'package-lock.json', 'deploy/docker/healthcheck.mjs'])
    assert.equal(ignored(rel, patterns), false, `${rel} is left out of the build context`);
});

// ---------- real tools ----------

/** The first Compose implementation installed: argv prefix and its name, or null. */
function composeTool(): { argv: string[]; name: string } | null {
  const candidates = [
    { argv: ['docker', 'compose'], name: 'docker compose (plugin)' },
    { argv: ['docker-compose'], name: 'docker-compose' },
    { argv: ['podman-compose'], name: 'podman-compose' },
  ];
  for (const c of candidates) {
    const r = spawnSync(c.argv[0]!, [...c.argv.slice(1), 'version'], { encoding: 'utf8' });
    if (r.status === 0) return { ...c, name: `${c.name} ${(r.stdout.match(/v?\d+\.\d+\.\d+/) ?? ['?'])[0]}` };
  }
  return null;
}
const compose = composeTool();

test('deploy - compose.yaml passes a real Compose implementation, with secrets.env made by make-secrets.sh', {
  skip: compose
    ? false
    : 'no Compose implementation installed (docker compose, docker-compose or podman-compose; CI installs docker-compose)',
}, async (t) => {
  const dir = await tmpDir({ t });
  const copy = dir.join('compose');
  cpSync(COMPOSE_DIR, copy, { recursive: true, filter: (src) => !src.endsWith('secrets.env') });
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(compose!.argv[0]!, [...compose!.argv.slice(1), '-f', join(copy, 'compose.yaml'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
  // without secrets.env Compose refuses the file, naming it
  const missing = run(['config', '-q']);
  assert.notEqual(missing.status, 0);
  assert.match(`${missing.stdout}${missing.stderr}`, /secrets\.env/);
  const made = spawnSync(join(copy, 'make-secrets.sh'), { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  assert.equal(statSync(join(copy, 'secrets.env')).mode & 0o777, 0o600);
  assert.notEqual(
    spawnSync(join(copy, 'make-secrets.sh'), { encoding: 'utf8' }).status,
    0,
    'make-secrets.sh never overwrites without --force',
  );

  const resolved = run(['--profile', 'gpu', '--profile', 'submit', 'config'], { BNN_WORKERS: '3' });
  assert.equal(resolved.status, 0, `${compose!.name}: ${resolved.stderr}`);
  const cfg = parseYaml(resolved.stdout) as ComposeFile;
  assert.deepEqual(Object.keys(cfg.services).sort(), ['coordinator', 'nats-1', 'nats-2', 'nats-3', 'submit', 'worker', 'worker-gpu']);
  assert.equal(Number(cfg.services.worker!.deploy?.replicas), 3, 'BNN_WORKERS sets the replicas');
  const secrets = Object.fromEntries(
    readFileSync(join(copy, 'secrets.env'), 'utf8')
      .split('\n')
      .filter((l) => /^BNN_\w+=/.test(l))
      .map((l) => l.split('=', 2) as [string, string]),
  );
  for (const s of ['nats-1', 'coordinator', 'worker', 'submit'])
    assert.deepEqual(cfg.services[s]!.environment, secrets, `${s} gets secrets.env`);
  assert.match(secrets.BNN_CLUSTER_TOKEN!, /^[0-9a-f]{48}$/);
  // GPU workers and the submission only with their profile
  assert.deepEqual([cfg.services['worker-gpu']!.profiles, cfg.services.submit!.profiles], [['gpu'], ['submit']]);
  assert.equal(cfg.services.worker!.profiles, undefined);
  t.diagnostic(`validated with ${compose!.name}`);
});

const natsServer = spawnSync('nats-server', ['--version'], { encoding: 'utf8' }).status === 0;

test('deploy - the NATS configs parse (nats-server -t) and form one JetStream cluster of three', {
  skip: natsServer ? false : 'nats-server not installed',
}, () => {
  const names: string[] = [];
  for (const n of [1, 2, 3]) {
    const file = join(COMPOSE_DIR, 'nats', `nats-${n}.conf`);
    const r = spawnSync('nats-server', ['-t', '-c', file], {
      encoding: 'utf8',
      env: { ...process.env, BNN_NATS_USER: 'u', BNN_NATS_PASS: 'p' },
    });
    assert.equal(r.status, 0, `${file}: ${r.stdout}${r.stderr}`);
    names.push(readFileSync(file, 'utf8').match(/^server_name:\s*(\S+)/m)![1]!);
  }
  assert.deepEqual(names, ['nats-1', 'nats-2', 'nats-3']);
  const shared = readFileSync(join(COMPOSE_DIR, 'nats', 'cluster.conf'), 'utf8');
  for (const n of names) assert.match(shared, new RegExp(`nats-route://${n}:6222`));
  assert.match(shared, /jetstream\s*\{[^}]*store_dir:\s*\/data\/jetstream/);
  const bad = spawnSync('nats-server', ['-t', '-c', '/dev/stdin'], { input: 'jetstream { store_dir: }\n', encoding: 'utf8' });
  assert.notEqual(bad.status, 0, 'nats-server -t refuses a broken config');
});

test('deploy - the run configs the submit service can send load', async () => {
  const files = readdirSync(join(COMPOSE_DIR, 'configs')).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.includes('fmnist-smoke.yaml'));
  for (const f of files) {
    const config = await loadConfig(join(COMPOSE_DIR, 'configs', f));
    assert.equal(config.dataset.name, 'fashion-mnist', f);
  }
});

test('deploy - healthcheck.mjs passes against a real bnn coordinator and fails once it is gone', async (t) => {
  const dir = await tmpDir({ t });
  const coord = spawnCli(['coordinator', '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--store', dir.join('bnn.db')], {
    cwd: dir.path,
    env: { BNN_CLUSTER_TOKEN: 'tok' },
    t,
  });
  const [, grpcPort] = await coord.waitForLine(/coordinator listening on 127\.0\.0\.1:(\d+)/, 30_000);
  const [, base] = await coord.waitForLine(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/, 10_000);
  const script = join(REPO_ROOT, 'deploy', 'docker', 'healthcheck.mjs');
  const probe = () =>
    spawnSync(process.execPath, [script, '--grpc', `127.0.0.1:${grpcPort}`, '--http', `${base}healthz`, '--http', `${base}readyz`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
  const up = probe();
  assert.equal(up.status, 0, up.stderr);
  coord.child.kill('SIGTERM');
  assert.equal((await coord.exited).code, 0);
  const down = probe();
  assert.equal(down.status, 1, down.stderr);
  assert.match(down.stderr, new RegExp(`unhealthy: grpc 127\\.0\\.0\\.1:${grpcPort}`));
  assert.match(down.stderr, /unhealthy: http .*readyz: ECONNREFUSED/);
  const usage = spawnSync(process.execPath, [script, '--tcp', 'x'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: healthcheck\.mjs/);
});
