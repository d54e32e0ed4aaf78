// Where a `bnn launch --local` cluster tells its user's other commands (`bnn monitor`) how to
// reach it: one JSON file per launch, `<dir>/<launcher pid>.json`, holding the coordinator's
// address, the cluster token and the dashboard url. The directory is the user's own (mode 0700;
// $XDG_RUNTIME_DIR/bnn, else ~/.bnn/clusters; BNN_CLUSTER_DIR overrides) and each file is
// mode 0600, written before it is named (temp file, rename), so only its user can read the token.
// A file whose launcher is gone (killed before it could remove it) is skipped and removed.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

export interface ClusterFile {
  /** `127.0.0.1:<port>` of the coordinator. */
  coordinator: string;
  token: string;
  dashboard: string | null;
  /** The launcher's pid (the file's name) and when it started the cluster. */
  pid: number;
  startedAt: string;
  /** The run the launch trains (set once submitted); the experiment database. */
  runId: string | null;
  store: string;
}

/** The directory of this user's cluster files. */
export function clusterFileDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BNN_CLUSTER_DIR) return env.BNN_CLUSTER_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'bnn');
  return join(homedir(), '.bnn', 'clusters');
}

/** Writes (or rewrites) this launch's file; returns its path. Never fails the launch: null when it cannot be written. */
export function writeClusterFile(info: ClusterFile, dir = clusterFileDir()): string | null {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    // someone else's directory (or one others may enter) is no place for a token
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return null;
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
    const path = join(dir, `${info.pid}.json`);
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, path);
    return path;
  } catch {
    return null;
  }
}

export function removeClusterFile(path: string | null): void {
  if (path) rmSync(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This user's running local clusters, newest first (files of launchers that are gone are removed). */
export function findLocalClusters(dir = clusterFileDir()): Array<ClusterFile & { path: string }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const out: Array<ClusterFile & { path: string }> = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const c = JSON.parse(readFileSync(path, 'utf8')) as ClusterFile;
      if (typeof c.coordinator !== 'string' || typeof c.token !== 'string' || typeof c.pid !== 'number') continue;
      if (!alive(c.pid)) {
        rmSync(path, { force: true });
        continue;
      }
      out.push({ ...c, path });
    } catch {
      /* being written, or not ours to read: skip */
    }
  }
  return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/** The one local cluster to use when no --coordinator is given; a UserError saying what to pass otherwise. */
export function theLocalCluster(dir = clusterFileDir()): ClusterFile & { path: string } {
  const found = findLocalClusters(dir);
  if (found.length === 1) return found[0]!;
  if (found.length === 0)
    throw new UserError(
      `no --coordinator given, and no 'bnn launch --local' cluster of yours runs on this host (none in ${dir}): ` +
        'pass --coordinator <host:port> (and --token, or BNN_CLUSTER_TOKEN)',
      { exitCode: 2 },
    );
  const list = found.map((c) => `  ${c.coordinator}  launched by pid ${c.pid} at ${c.startedAt}${c.runId ? `, run ${c.runId}` : ''}`);
  throw new UserError(`several local clusters run; pick one with --coordinator <host:port>:\n${list.join('\n')}`, { exitCode: 2 });
}
