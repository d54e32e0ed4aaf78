// Hosts for multi-host tests, modelled with Linux network namespaces: one namespace per host, all
// joined by veth pairs to a bridge that lives in a namespace of its own, so nothing is added to the
// root namespace and the hosts' addresses exist only inside namespaces the test made. Processes
// started on a host (`ip netns exec`) run in their own process group with stdout and stderr in a
// log file; `cleanup()` kills them all and deletes every namespace, also on exit and on SIGINT.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Something with node:test's `after` hook. */
interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface NetworkHostsOptions {
  /** Where each process's log file goes (created). */
  logDir: string;
  /** node:test context: `cleanup()` runs when the test ends. */
  t?: AfterHook;
  /** Third octet of the hosts' 10.213.<x>.0/24; default derived from the pid, avoiding the root namespace's addresses. */
  subnet?: number;
  /** Give each host's processes its name as hostname (a UTS namespace per process, needs unshare); default true. */
  hostnames?: boolean;
}

export interface SpawnOptions {
  cwd: string;
  /** The whole environment of the process (nothing is inherited). */
  env: Record<string, string | undefined>;
  /** Name in logs and messages; default the command's base name. */
  label?: string;
}

export interface HostProcess {
  readonly label: string;
  readonly host: string;
  /** Pid of the process, also its process group id. */
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** Exit code and signal once exited; null while running. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Everything it wrote so far. */
  log(): string;
  /** Its last `lines` lines, headed by its label, pid and state. */
  tail(lines?: number): string;
  /** Resolves with the first match of `re` in its log (polls the file); rejects on exit or after `timeoutMs`. */
  waitForLog(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Signals its process group. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM to its group, SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface NetHost {
  readonly name: string;
  /** The namespace's name (`bnn-<pid>-<name>`). */
  readonly ns: string;
  /** Its IPv4 address on the test network. */
  readonly address: string;
  /** Starts a long-lived process inside this host's namespace. */
  spawn(command: string, args: readonly string[], options: SpawnOptions): HostProcess;
  /** Runs a short command inside the namespace and collects its output (killed after `timeoutMs`). */
  run(
    command: string,
    args: readonly string[],
    options?: { timeoutMs?: number; env?: Record<string, string | undefined> },
  ): Promise<CommandResult>;
  /** GET `url` from inside the namespace (curl); null when it cannot be fetched. */
  httpGet(url: string, timeoutMs?: number): Promise<{ status: number; body: string } | null>;
  /** Every pid whose network namespace is this host's. */
  pids(): number[];
  /** The processes spawned on this host, in order. */
  processes(): HostProcess[];
  /** Signals every process of the host (process groups, then whatever else is in the namespace); with SIGKILL, waits until none is left. */
  killAll(signal?: NodeJS.Signals): Promise<void>;
}

export interface NetworkHosts {
  /** Namespace name prefix, `bnn-<pid>-`. */
  readonly prefix: string;
  /** `10.213.<x>.0/24`. */
  readonly subnet: string;
  readonly hosts: readonly NetHost[];
  host(name: string): NetHost;
  /** Every process spawned on any host. */
  processes(): HostProcess[];
  /** Log tails of the given (default: all) processes, for assertion messages. */
  tails(processes?: readonly HostProcess[], lines?: number): string;
  /** Kills every process and deletes every namespace; idempotent. */
  cleanup(): Promise<void>;
  /** What is left after cleanup: namespaces with the prefix, spawned or seen pids still alive. Empty: nothing. */
  leftovers(): string[];
  /** Throws, naming them, when there are leftovers. */
  ensureLeftNothing(): void;
}

const IP = 'ip';

function ip(args: readonly string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { stderr?: string | Buffer };
  const stderr = e.stderr ? String(e.stderr).trim() : '';
  return stderr || e.message;
}

/** Namespaces by name (`ip netns list` prints `name (id: n)`). */
function listNamespaces(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

function namespacePids(ns: string): number[] {
  try {
    return ip(['netns', 'pids', ns])
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** Running: neither gone nor a zombie waiting for its reaper. */
export function pidAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The process's start time (clock ticks since boot), so a reused pid is not mistaken for it; null when gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Why this machine cannot run namespace hosts (not Linux, no `ip`, not permitted), or null when it
 * can: it creates two namespaces joined by a veth pair and deletes them again.
 */
export function canCreateNamespaces(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const a = `bnn-${process.pid}-probe-a`;
  const b = `bnn-${process.pid}-probe-b`;
  try {
    try {
      ip(['netns', 'add', a]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return "the 'ip' command (iproute2) is not installed";
      const uid = process.getuid?.();
      return `cannot create a network namespace (${errorText(err)})${uid !== 0 ? `; running as uid ${uid}, not root` : ''}`;
    }
    ip(['netns', 'add', b]);
    ip(['-n', a, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1', 'netns', b]);
    ip(['-n', a, 'link', 'set', 'lo', 'up']);
    return null;
  } catch (err) {
    return `cannot set up a veth pair between network namespaces (${errorText(err)})`;
  } finally {
    for (const ns of [a, b]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // not created
      }
    }
  }
}

/**
 * Namespaces a test process that died (SIGKILL, no exit hook) left behind: `bnn-<pid>-…` whose pid is
 * gone. Their processes were that test's hosts; they are killed and the namespaces deleted.
 */
function sweepStale(): void {
  const stale = listNamespaces().filter((ns) => {
    const m = /^bnn-(\d+)-/.exec(ns);
    return m !== null && !pidAlive(Number(m[1]));
  });
  for (const ns of stale) for (const pid of namespacePids(ns)) signal(pid, 'SIGKILL');
  for (const ns of stale) {
    try {
      ip(['netns', 'del', ns]);
    } catch {
      // another sweeper got there first
    }
  }
}

const registries = new Set<() => void>();
let exitHooks = false;
function installExitHooks(): void {
  if (exitHooks) return;
  exitHooks = true;
  const all = () => {
    for (const f of [...registries]) f();
  };
  process.once('exit', all);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      all();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

function tailOf(text: string, lines: number): string {
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}

/**
 * `ip netns exec <ns>` and, where util-linux's unshare is there, a UTS namespace of its own with the
 * host's name as hostname (what `os.hostname()` reports to the coordinator); every step execs, so the
 * pid is the command's.
 */
function inHost(ns: string, hostname: string | null, command: string, args: readonly string[]): string[] {
  const inNs = ['netns', 'exec', ns];
  if (!hostname) return [...inNs, command, ...args];
  return [...inNs, 'unshare', '--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', hostname, command, ...args];
}

let unshareChecked: boolean | null = null;
function haveUnshare(): boolean {
  if (unshareChecked === null) {
    try {
      execFileSync('unshare', ['--version'], { stdio: 'ignore' });
      unshareChecked = true;
    } catch {
      unshareChecked = false;
    }
  }
  return unshareChecked;
}

function startProcess(host: string, argv: readonly string[], o: SpawnOptions & { logFile: string; label: string }): HostProcess {
  const fd = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(IP, argv, { cwd: o.cwd, env: o.env, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const label = o.label;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err.message;
      exit = { code: -1, signal: null };
      resolve(exit);
    });
    child.once('exit', (code, sig) => {
      exit = { code, signal: sig };
      resolve(exit);
    });
  });
  const pid = child.pid ?? -1;
  const log = () => (existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8') : '');
  const proc: HostProcess = {
    label,
    host,
    pid,
    logFile: o.logFile,
    exited,
    get running() {
      return exit === null;
    },
    get exit() {
      return exit;
    },
    log,
    tail(lines = 30) {
      const state = exit ? `exited (code ${exit.code}, signal ${exit.signal}${spawnError ? `, ${spawnError}` : ''})` : 'running';
      return `--- ${label} on ${host} (pid ${pid}, ${state}), last ${lines} lines of ${o.logFile}:\n${tailOf(log(), lines)}`;
    },
    async waitForLog(re, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = log().match(re);
        if (m) return m;
        if (exit) throw new Error(`${label} on ${host} exited before its log matched ${re}\n${proc.tail()}`);
        if (Date.now() > deadline)
          throw new Error(`${label} on ${host}: no log line matching ${re} within ${timeoutMs} ms\n${proc.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill(sig = 'SIGKILL') {
      if (exit === null && pid > 0) signal(-pid, sig);
    },
    async stop(graceMs = 10_000) {
      if (exit !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // whatever else was in its group
      if (pid > 0) signal(-pid, 'SIGKILL');
    },
  };
  return proc;
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * A pid-derived third octet in 20..219 that no address of the root namespace uses. The test network
 * is private to its namespaces either way (nothing routes to it); this keeps logs unambiguous.
 */
function defaultSubnet(): number {
  const used = ip(['-o', '-4', 'addr']);
  for (let i = 0; i < 200; i++) {
    const x = 20 + ((process.pid + i) % 200);
    if (!used.includes(`10.213.${x}.`)) return x;
  }
  return 20 + (process.pid % 200);
}

/**
 * Creates one namespace per name (`bnn-<pid>-<name>`, `lo` up, `eth0` at 10.213.<x>.<10+i>/24) and a
 * bridge namespace (`bnn-<pid>-br`) joining them. Names: lowercase letters and digits, 1–8 characters.
 */
export async function createNetworkHosts(names: readonly string[], options: NetworkHostsOptions): Promise<NetworkHosts> {
  for (const n of names) if (!/^[a-z0-9]{1,8}$/.test(n)) throw new Error(`host name '${n}': expected 1-8 lowercase letters or digits`);
  if (new Set(names).size !== names.length || names.includes('br'))
    throw new Error(`host names must be unique and not 'br': ${names.join(' ')}`);
  // The prefix is per process: one network at a time (a test file makes one and cleans it up).
  if (registries.size > 0) throw new Error('a network of namespace hosts already exists in this process: clean it up first');
  mkdirSync(options.logDir, { recursive: true });
  sweepStale();
  const prefix = `bnn-${process.pid}-`;
  const x = options.subnet ?? defaultSubnet();
  const bridge = `${prefix}br`;
  const created: string[] = [];
  const spawned: HostProcess[] = [];
  /** Pids found in the namespaces (not spawned by us: children that escaped their group), with their start times. */
  const seenPids = new Map<number, string | null>();
  let serial = 0;
  let cleaned = false;

  const syncCleanup = () => {
    for (const p of spawned) p.kill('SIGKILL');
    for (const ns of created) for (const pid of namespacePids(ns)) signal(pid, 'SIGKILL');
    for (const ns of created.splice(0)) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // gone already
      }
    }
  };
  registries.add(syncCleanup);
  installExitHooks();

  const addNs = (ns: string) => {
    ip(['netns', 'add', ns]);
    created.push(ns);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };

  const hosts: NetHost[] = [];
  try {
    addNs(bridge);
    ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', bridge, 'link', 'set', 'br0', 'up']);
    names.forEach((name, i) => {
      const ns = `${prefix}${name}`;
      const address = `10.213.${x}.${10 + i}`;
      addNs(ns);
      ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', bridge]);
      ip(['-n', bridge, 'link', 'set', `v${i}`, 'master', 'br0']);
      ip(['-n', bridge, 'link', 'set', `v${i}`, 'up']);
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      hosts.push(makeHost(name, ns, address));
    });
  } catch (err) {
    syncCleanup();
    registries.delete(syncCleanup);
    throw new Error(`creating the test network failed: ${errorText(err)}`);
  }

  function makeHost(name: string, ns: string, address: string): NetHost {
    const mine: HostProcess[] = [];
    const hostname = options.hostnames === false || !haveUnshare() ? null : name;
    const host: NetHost = {
      name,
      ns,
      address,
      spawn(command, args, o) {
        const label = o.label ?? command.split('/').at(-1)!;
        const logFile = join(options.logDir, `${String(++serial).padStart(2, '0')}-${name}-${label.replace(/[^\w.-]/g, '_')}.log`);
        const p = startProcess(name, inHost(ns, hostname, command, args), { ...o, label, logFile });
        mine.push(p);
        spawned.push(p);
        return p;
      },
      run(command, args, o = {}) {
        return new Promise((resolve) => {
          execFile(
            IP,
            inHost(ns, hostname, command, args),
            {
              encoding: 'utf8',
              timeout: o.timeoutMs ?? 10_000,
              killSignal: 'SIGKILL',
              maxBuffer: 16 << 20,
              ...(o.env ? { env: o.env } : {}),
            },
            (err, stdout, stderr) => {
              const code = err
                ? typeof (err as { code?: unknown }).code === 'number'
                  ? ((err as { code: number }).code as number)
                  : null
                : 0;
              resolve({ code, stdout, stderr });
            },
          );
        });
      },
      async httpGet(url, timeoutMs = 3000) {
        const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
        const r = await host.run('curl', ['-s', '--max-time', secs, '-w', '\n%{http_code}', url], { timeoutMs: timeoutMs + 2000 });
        if (r.code !== 0) return null;
        const at = r.stdout.lastIndexOf('\n');
        return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
      },
      pids: () => namespacePids(ns),
      processes: () => [...mine],
      async killAll(sig = 'SIGKILL') {
        for (const p of mine) p.kill(sig);
        const stray = namespacePids(ns);
        for (const pid of stray) {
          if (!seenPids.has(pid)) seenPids.set(pid, startTime(pid));
          signal(pid, sig);
        }
        if (sig !== 'SIGKILL') return;
        const gone = await waitUntil(() => mine.every((p) => !p.running) && namespacePids(ns).length === 0, 15_000);
        if (!gone) {
          const left = namespacePids(ns);
          throw new Error(
            `host ${name}: processes survived SIGKILL for 15 s: ${left.join(' ')} ${mine.filter((p) => p.running).map((p) => p.label)}`,
          );
        }
      },
    };
    return host;
  }

  const net: NetworkHosts = {
    prefix,
    subnet: `10.213.${x}.0/24`,
    hosts,
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (!h) throw new Error(`no host '${name}' (hosts: ${hosts.map((x) => x.name).join(' ')})`);
      return h;
    },
    processes: () => [...spawned],
    tails(processes = spawned, lines = 30) {
      return processes.map((p) => p.tail(lines)).join('\n');
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      const errors: string[] = [];
      for (const h of hosts) {
        await h.killAll('SIGKILL').catch((err: Error) => errors.push(err.message));
      }
      for (const ns of created) {
        for (const pid of namespacePids(ns)) {
          if (!seenPids.has(pid)) seenPids.set(pid, startTime(pid));
          signal(pid, 'SIGKILL');
        }
      }
      await waitUntil(() => spawned.every((p) => !p.running), 15_000);
      for (const ns of created.splice(0)) {
        try {
          ip(['netns', 'del', ns]);
        } catch (err) {
          errors.push(`ip netns del ${ns}: ${errorText(err)}`);
        }
      }
      registries.delete(syncCleanup);
      if (errors.length > 0) throw new Error(`cleanup: ${errors.join('; ')}`);
    },
    leftovers() {
      const left: string[] = [];
      for (const ns of listNamespaces()) if (ns.startsWith(prefix)) left.push(`namespace ${ns}`);
      for (const p of spawned) if (p.running) left.push(`process ${p.pid} (${p.label} on ${p.host})`);
      for (const [pid, started] of seenPids) {
        if (pidAlive(pid) && startTime(pid) === started) left.push(`process ${pid} (found in a namespace: ${comm(pid)})`);
      }
      return left;
    },
    ensureLeftNothing() {
      const left = net.leftovers();
      if (left.length > 0) throw new Error(`the test left behind: ${left.join(', ')}`);
    },
  };
  options.t?.after(() => net.cleanup());
  return net;
}
