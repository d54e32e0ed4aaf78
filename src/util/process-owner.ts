/**
 * The process that owns a run (`bnn train`, or the coordinator of a cluster run), recorded
 * with the run so a later command can tell whether it is still there. A pid alone is not an
 * identity: pids are reused, and restart at 1 after a reboot. So the owner also carries the
 * kernel's boot id, its pid namespace and its start time (clock ticks after boot, from
 * /proc/<pid>/stat), which together name one process instance on one host. Where /proc is
 * missing (not Linux) only the pid is checked.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessOwner {
  /** `os.hostname()` of the owner's host. */
  host: string;
  pid: number;
  /** `<boot id>:<pid namespace inode>:<start time in clock ticks after boot>`; null where /proc cannot tell. */
  start: string | null;
}

/** alive: the owner process still runs; gone: it does not (the run is orphaned); unknown: cannot tell from here. */
export type OwnerState = 'alive' | 'gone' | 'unknown';

export interface OwnerVerdict {
  state: OwnerState;
  /** Why, in a few words (`no process 4242 on node-a`, `another host: node-b`). */
  why: string;
}

function readTrimmed(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function bootId(): string | null {
  return readTrimmed('/proc/sys/kernel/random/boot_id');
}

function pidNamespace(): string | null {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? null;
  } catch {
    return null;
  }
}

interface ProcStat {
  /** One of R S D Z T t X ... (`Z`: exited, waiting for its parent to reap it). */
  state: string;
  /** Field 22, `starttime`: clock ticks after boot. */
  startTicks: string;
}

/** /proc/<pid>/stat's state and start time, or null where it cannot be read (no such process, no /proc). */
function procStat(pid: number): ProcStat | null {
  const text = readTrimmed(`/proc/${pid}/stat`);
  if (text === null) return null;
  // `pid (comm) state ...`: comm may hold spaces and parentheses, so split after the last `)`.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const startTicks = fields[19];
  return fields[0] && startTicks ? { state: fields[0], startTicks } : null;
}

/** The owner record of process `pid` on this host (its start read from /proc where it can be). */
export function processOwner(pid: number): ProcessOwner {
  const boot = bootId();
  const ns = pidNamespace();
  const stat = procStat(pid);
  return { host: hostname(), pid, start: boot && ns && stat ? `${boot}:${ns}:${stat.startTicks}` : null };
}

let self: ProcessOwner | undefined;

/** This process as an owner (read once). */
export function currentProcessOwner(): ProcessOwner {
  self ??= processOwner(process.pid);
  return self;
}

/** `pid 4242 on node-a`. */
export function describeOwner(owner: ProcessOwner): string {
  return `pid ${owner.pid} on ${owner.host}`;
}

/** Whether the process exists (signal 0 checks without sending; EPERM: it exists, another user's). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `owner` still runs, judged from this process (`here`: tests pass another view).
 * Another host cannot be checked (unknown). On this host a different boot id means the host
 * has restarted since (gone); a different pid namespace (another container sharing the
 * hostname) cannot be checked (unknown); otherwise the pid must exist, not be a zombie, and
 * have the recorded start time (another start time: the pid was reused, gone).
 */
export function ownerVerdict(owner: ProcessOwner, here: ProcessOwner = currentProcessOwner()): OwnerVerdict {
  if (owner.host !== here.host)
    return { state: 'unknown', why: `it runs on another host (${owner.host}), which cannot be checked from ${here.host}` };
  const [boot, ns, ticks] = owner.start?.split(':') ?? [];
  const [hereBoot, hereNs] = here.start?.split(':') ?? [];
  if (boot && hereBoot && boot !== hereBoot)
    return { state: 'gone', why: `${owner.host} has restarted since ${describeOwner(owner)} started` };
  if (ns && hereNs && ns !== hereNs) return { state: 'unknown', why: `${describeOwner(owner)} is in another pid namespace (container)` };
  if (!pidExists(owner.pid)) return { state: 'gone', why: `no process ${owner.pid} on ${owner.host}` };
  const stat = procStat(owner.pid);
  if (stat?.state === 'Z') return { state: 'gone', why: `process ${owner.pid} on ${owner.host} has exited` };
  if (ticks && stat && stat.startTicks !== ticks) {
    return { state: 'gone', why: `process ${owner.pid} on ${owner.host} is a later process that reused its pid` };
  }
  return { state: 'alive', why: `${describeOwner(owner)} is running` };
}
