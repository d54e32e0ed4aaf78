import type { Command } from 'commander';
import { describeAllowed, resolvePath } from '../config/describe.js';
import { NAMED_OVERRIDES, type ConfigOverrides } from '../config/overrides.js';
import { UserError } from '../util/errors.js';

/**
 * The run-config override flags (`--epochs`, ..., repeatable `--set path=value`), shared
 * by every command that takes a run config. Values stay strings here: applyOverrides
 * parses and validates them against the schema, naming the flag in any error.
 */
export function addConfigOverrideOptions(cmd: Command): Command {
  for (const o of NAMED_OVERRIDES) {
    const node = resolvePath(o.path);
    const allowed = node.ok ? describeAllowed(node.node) : '';
    cmd.option(`${o.flag} <value>`, `set ${o.path.join('.')} (${allowed})`);
  }
  cmd.option(
    '--set <path=value>',
    'set any config field, value as YAML (repeatable): --set train.schedule.name=constant',
    (value: string, previous: string[] = []) => [...previous, value],
  );
  return cmd;
}

/** Picks the override flags out of a command's parsed options. */
export function overridesFromOptions(opts: Record<string, unknown>): ConfigOverrides {
  const overrides: Record<string, unknown> = {};
  for (const o of NAMED_OVERRIDES) {
    if (opts[o.key] !== undefined) overrides[o.key] = opts[o.key];
  }
  if (Array.isArray(opts.set)) overrides.set = opts.set;
  return overrides as ConfigOverrides;
}

/**
 * Refuses the first of `flags` (flag name → the value given, undefined when absent) that was
 * given: a usage error (exit 2) saying `<flag> <why>`. For flags that only apply in another mode.
 */
export function refuseFlags(flags: Record<string, unknown>, why: string): void {
  const given = Object.entries(flags).find(([, v]) => v !== undefined);
  if (given) throw new UserError(`${given[0]} ${why}`, { exitCode: 2 });
}
