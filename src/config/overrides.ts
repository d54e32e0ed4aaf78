import { parse as parseYaml } from 'yaml';
import { acceptsNull, acceptsString, formatPath, formatValue, resolvePath, type JsonSchemaNode, type PathSegment } from './describe.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { toConfigIssues } from './issues.js';
import { runConfigSchema, type RunConfig } from './schema.js';

/** A value from the command line: the raw flag text, or an already typed value. */
export type OverrideValue = string | number | boolean | null;

/**
 * Command-line overrides of a run config. Keys match commander's camelCased flag names,
 * so a command can pass its parsed options straight in.
 */
export interface ConfigOverrides {
  epochs?: OverrideValue;
  batchSize?: OverrideValue;
  subset?: OverrideValue;
  seed?: OverrideValue;
  precision?: OverrideValue;
  threads?: OverrideValue;
  backend?: OverrideValue;
  lr?: OverrideValue;
  binaryLr?: OverrideValue;
  arch?: OverrideValue;
  dataset?: OverrideValue;
  name?: OverrideValue;
  store?: OverrideValue;
  checkpointDir?: OverrideValue;
  /** `path=value` assignments (`train.schedule.name=constant`); later ones win. */
  set?: readonly string[];
}

export type NamedOverrideKey = Exclude<keyof ConfigOverrides, 'set'>;

export interface NamedOverride {
  key: NamedOverrideKey;
  /** The flag as typed, e.g. `--batch-size`. */
  flag: string;
  /** Config field it sets. */
  path: readonly string[];
}

/** Every named override flag and the field it sets, in help order. */
export const NAMED_OVERRIDES: readonly NamedOverride[] = [
  { key: 'name', flag: '--name', path: ['name'] },
  { key: 'seed', flag: '--seed', path: ['seed'] },
  { key: 'dataset', flag: '--dataset', path: ['dataset', 'name'] },
  { key: 'subset', flag: '--subset', path: ['dataset', 'subset'] },
  { key: 'arch', flag: '--arch', path: ['model', 'arch'] },
  { key: 'precision', flag: '--precision', path: ['model', 'precision'] },
  { key: 'epochs', flag: '--epochs', path: ['train', 'epochs'] },
  { key: 'batchSize', flag: '--batch-size', path: ['train', 'batchSize'] },
  { key: 'lr', flag: '--lr', path: ['train', 'optimizer', 'lr'] },
  { key: 'binaryLr', flag: '--binary-lr', path: ['train', 'optimizer', 'binaryLr'] },
  { key: 'backend', flag: '--backend', path: ['engine', 'backend'] },
  { key: 'threads', flag: '--threads', path: ['engine', 'threads'] },
  { key: 'store', flag: '--store', path: ['store'] },
  { key: 'checkpointDir', flag: '--checkpoint-dir', path: ['checkpointDir'] },
];

interface Assignment {
  path: PathSegment[];
  value: unknown;
  /** The flag that set it: `--epochs`, `--set`. */
  flag: string;
  /** The text given after the flag: `ten`, `train.epochs=ten`. */
  text: string;
}

/**
 * Returns a copy of `config` with the overrides applied and the result re-validated.
 * Throws ConfigError (exit code 2: bad usage) naming, for every bad path or value at once,
 * the flag and its text as given, the field and what is allowed, in the wording of every
 * bad flag value: `--epochs: 'ten' is not valid; expected train.epochs to be an integer >= 1`.
 * The input config is not modified.
 */
export function applyOverrides(config: RunConfig, overrides: ConfigOverrides): RunConfig {
  const issues: ConfigIssue[] = [];
  const assignments: Assignment[] = [];
  const namedPaths = new Map<string, string>();

  for (const named of NAMED_OVERRIDES) {
    const raw = overrides[named.key];
    if (raw === undefined) continue;
    const path = [...named.path];
    const node = resolvePath(path);
    if (!node.ok) throw new Error(`named override ${named.flag} points at a missing field: ${node.message}`);
    assignments.push({ path, value: coerce(raw, node.node), flag: named.flag, text: String(raw) });
    namedPaths.set(formatPath(path), named.flag);
  }

  for (const text of overrides.set ?? []) {
    const bad = (path: string, message: string) => issues.push({ path, message, source: '--set', value: text });
    const eq = text.indexOf('=');
    if (eq <= 0) {
      bad('', 'expected path=value, e.g. train.optimizer.lr=0.01');
      continue;
    }
    const pathText = text.slice(0, eq).trim();
    const path: PathSegment[] = pathText.split('.');
    if (path.some((s) => s === '')) {
      bad(pathText, `empty segment in field path ${pathText}`);
      continue;
    }
    const node = resolvePath(path);
    if (!node.ok) {
      bad(pathText, node.message);
      continue;
    }
    const flag = namedPaths.get(formatPath(path));
    if (flag !== undefined) {
      bad(pathText, `${pathText} is also set by ${flag}; give it once`);
      continue;
    }
    let value: unknown;
    try {
      value = coerce(text.slice(eq + 1), node.node);
    } catch (err) {
      bad(pathText, `the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    assignments.push({ path, value, flag: '--set', text });
  }

  const merged = structuredClone(config) as unknown as Record<string, unknown>;
  for (const a of assignments) {
    const problem = setAt(merged, a.path, a.value);
    if (problem) issues.push({ path: formatPath(a.path), message: problem, source: a.flag, value: a.text });
  }
  // Validate what could be applied, so one run reports bad paths and bad values together.
  const result = runConfigSchema.safeParse(merged, { reportInput: true });
  if (result.success && issues.length === 0) return result.data;
  if (!result.success) {
    // Later assignments win, so the last one covering the path is the one to blame.
    const blame = (path: readonly PathSegment[]): Assignment | undefined => {
      const p = formatPath(path);
      for (let i = assignments.length - 1; i >= 0; i--) {
        const a = formatPath(assignments[i]!.path);
        if (p === a || p.startsWith(`${a}.`) || a.startsWith(`${p}.`) || p === '') return assignments[i];
      }
      return undefined;
    };
    issues.push(
      ...toConfigIssues(result.error.issues, {
        sourceOf: (path) => blame(path)?.flag ?? 'config',
        flagTextOf: (path) => blame(path)?.text,
      }),
    );
  }
  throw new ConfigError(issues, { exitCode: 2 });
}

/**
 * Flag text is read as a YAML scalar or flow collection (`0.01`, `true`, `[512, 512]`,
 * `{name: constant}`), except where the field is a free string: there `--name 007`
 * stays `"007"` rather than becoming the number 7.
 */
function coerce(raw: OverrideValue, node: JsonSchemaNode): unknown {
  if (typeof raw !== 'string') return raw;
  const parsed: unknown = parseYaml(raw);
  if (acceptsString(node)) {
    if (parsed === null && acceptsNull(node) && raw.trim() !== '') return null;
    return typeof parsed === 'string' ? parsed : raw;
  }
  return parsed;
}

/** Sets a value at a path, creating missing mappings; returns a problem or undefined. */
function setAt(root: Record<string, unknown>, path: readonly PathSegment[], value: unknown): string | undefined {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (Array.isArray(node)) {
      const index = Number(seg);
      if (index > node.length) {
        return `index ${index} is past the end of ${formatPath(path.slice(0, i))} (${formatValue(node)})`;
      }
      if (last) node[index] = value;
      else node = node[index] ??= {};
    } else if (typeof node === 'object' && node !== null) {
      const obj = node as Record<string, unknown>;
      if (last) obj[String(seg)] = value;
      else {
        const key = String(seg);
        if (typeof obj[key] !== 'object' || obj[key] === null) obj[key] = {};
        node = obj[key];
      }
    } else {
      return `${formatPath(path.slice(0, i))} is ${formatValue(node)}, not a mapping or list`;
    }
  }
  return undefined;
}
