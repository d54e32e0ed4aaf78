import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { PathSegment } from './describe.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { toConfigIssues } from './issues.js';
import { runConfigSchema, type RunConfig } from './schema.js';

export interface ParseConfigOptions {
  /** Name used in messages: the file name, or e.g. `<stdin>`. */
  source: string;
  /** Run name when the config has none (loadConfig passes the file stem). */
  defaultName?: string;
  /** 1-based line of a field path in the source text, for messages. */
  lineOf?: (path: readonly PathSegment[]) => number | undefined;
  /** Exit code the ConfigError carries: 1 for files, 2 for flags. */
  exitCode?: 1 | 2;
}

/**
 * Validates an already-parsed config object and fills in defaults.
 * Throws ConfigError with every problem found.
 */
export function parseRunConfig(raw: unknown, options: ParseConfigOptions): RunConfig {
  let input = raw ?? {};
  if (options.defaultName !== undefined && isPlainObject(input) && !('name' in input)) {
    input = { ...input, name: options.defaultName };
  }
  const result = runConfigSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const ctx = {
    sourceOf: () => options.source,
    ...(options.lineOf ? { lineOf: options.lineOf } : {}),
  };
  throw new ConfigError(toConfigIssues(result.error.issues, ctx), { exitCode: options.exitCode ?? 1 });
}

/** Parses YAML text into a validated config. An empty document means all defaults. */
export function parseConfigText(text: string, options: ParseConfigOptions): RunConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((err) => {
      const issue: ConfigIssue = {
        path: '',
        message: `invalid YAML: ${err.message.split('\n')[0]}`,
        source: options.source,
      };
      issue.line = lineCounter.linePos(err.pos[0]).line;
      return issue;
    });
    throw new ConfigError(issues, { exitCode: options.exitCode ?? 1 });
  }
  const lineOf = (path: readonly PathSegment[]): number | undefined => {
    const offset = offsetOf(doc.contents, path);
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  return parseRunConfig(doc.toJS({ maxAliasCount: 1000 }), { ...options, lineOf });
}

/**
 * Reads and validates a YAML run config. The run name defaults to the file's stem
 * (`fmnist-mlp.yaml` → `fmnist-mlp`).
 */
export async function loadConfig(path: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError([{ path: '', message: `cannot read config file: ${why}`, source: path }], {
      cause: err,
    });
  }
  return parseConfigText(text, { source: path, defaultName: basename(path, extname(path)) });
}

/** Start offset of the deepest YAML node on `path` (a key's own position for map keys). */
function offsetOf(root: unknown, path: readonly PathSegment[]): number | undefined {
  let node = root as YamlNode | null | undefined;
  let offset = node?.range?.[0];
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const key = p.key as { value?: unknown } | null;
        return key !== null && typeof key === 'object' && String(key.value) === String(seg);
      });
      if (!pair) break;
      offset = (pair.key as YamlNode).range?.[0] ?? offset;
      node = pair.value as YamlNode | null;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as YamlNode | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
