// The bnn command lines of pod specs (the image's entrypoint is `bnn`, so a container's args are
// the subcommand and its flags) checked by the CLI's own commander definitions.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/index.js';
import { commandContext } from '../../src/cli/command.js';
import { REPO_ROOT } from './cli.js';
import type { Container, Pod } from './k8s-pods.js';

/** Containers running the project's image (bnn-cluster, bnn-cluster-cuda); patches without an image count when they set args. */
export function bnnContainers(pods: readonly Pod[]): Array<{ where: string; container: Container }> {
  return pods.flatMap((p) =>
    (p.spec.containers ?? [])
      .filter((c) => (c.image === undefined ? p.role === 'patch' && c.args !== undefined : /^bnn-cluster(-cuda)?(:|$)/.test(c.image)))
      .map((container) => ({ where: `${p.where} container ${container.name}`, container })),
  );
}

const silent = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

/**
 * Why commander refuses `args` as a bnn command line (an unknown subcommand or flag, a flag
 * without its value, a missing argument or required flag), or null when it parses. No action
 * runs: each subcommand's action is replaced by one that does nothing.
 */
export async function commanderRefusal(args: readonly string[]): Promise<string | null> {
  const program = buildProgram(commandContext({ stdout: silent(), stderr: silent() }));
  const sub = program.commands.find((c) => c.name() === args[0]);
  if (!sub) return `unknown subcommand "${args[0]}" (bnn has: ${program.commands.map((c) => c.name()).join(', ')})`;
  for (const c of program.commands) c.action(() => undefined);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The subcommand's long flags, for messages. */
export function flagsOf(sub: string): string[] {
  const program = buildProgram(commandContext({ stdout: silent(), stderr: silent() }));
  const cmd: Command | undefined = program.commands.find((c) => c.name() === sub);
  return (cmd?.options ?? []).map((o) => o.long ?? o.flags);
}

/**
 * Problems of one container's command line: no args, a `command` that overrides the `bnn`
 * entrypoint, a `$(VAR)` naming no env var of the container, or what commander refuses.
 */
export async function containerCliProblems(where: string, c: Container): Promise<string[]> {
  if (c.command !== undefined) return [`${where}: sets command; the image's entrypoint is bnn, so give the subcommand in args`];
  if (!c.args || c.args.length === 0) return [`${where}: no args (the bnn subcommand and its flags)`];
  const envNames = new Set((c.env ?? []).map((e) => e.name));
  const problems: string[] = [];
  // Kubernetes expands $(VAR) from the container's env; $$ escapes
  const args = c.args.map((a) =>
    a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
      if (m === '$$') return '$';
      if (!envNames.has(name as string)) problems.push(`${where}: ${m} names no env var of the container`);
      return 'x';
    }),
  );
  const refusal = await commanderRefusal(args);
  if (refusal) problems.push(`${where}: bnn ${args.join(' ')}: ${refusal}`);
  return problems;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every `BNN_*` name the sources (src/, coordinator/, worker/; tests excluded) mention. */
export function envNamesInSources(): Set<string> {
  const names = new Set<string>();
  for (const dir of ['src', 'coordinator', 'worker'])
    for (const f of sourceFiles(path.join(REPO_ROOT, dir)))
      for (const m of readFileSync(f, 'utf8').matchAll(/\bBNN_[A-Z0-9_]+/g)) names.add(m[0]);
  return names;
}
