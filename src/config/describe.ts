import { z } from 'zod';
import { runConfigSchema } from './schema.js';

/**
 * Human descriptions of config fields, derived from the zod schema through its JSON
 * Schema so error messages and `--set` path checks never drift from the schema itself.
 */

/** The subset of JSON Schema that `z.toJSONSchema` emits for the run config. */
export interface JsonSchemaNode {
  type?: string;
  enum?: readonly unknown[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode | false;
  prefixItems?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  minItems?: number;
  maxItems?: number;
  /** From zod's `.describe()`: a field's own wording of what it accepts. */
  description?: string;
}

export type PathSegment = string | number;

let cached: JsonSchemaNode | undefined;

export function configJsonSchema(): JsonSchemaNode {
  cached ??= z.toJSONSchema(runConfigSchema, { io: 'input' }) as JsonSchemaNode;
  return cached;
}

export function formatPath(path: readonly PathSegment[]): string {
  return path.map(String).join('.');
}

/** The node without its `null` alternative (nullable fields are `anyOf [T, null]`). */
export function withoutNull(node: JsonSchemaNode): JsonSchemaNode {
  if (!node.anyOf) return node;
  const rest = node.anyOf.filter((n) => n.type !== 'null');
  return rest.length === 1 ? rest[0]! : node;
}

export function acceptsNull(node: JsonSchemaNode): boolean {
  return node.type === 'null' || (node.anyOf?.some((n) => n.type === 'null') ?? false);
}

export function acceptsString(node: JsonSchemaNode): boolean {
  const inner = withoutNull(node);
  return inner.type === 'string' && inner.enum === undefined;
}

export function objectKeys(node: JsonSchemaNode): string[] | undefined {
  const inner = withoutNull(node);
  return inner.type === 'object' && inner.properties ? Object.keys(inner.properties) : undefined;
}

export type ResolvedPath = { ok: true; node: JsonSchemaNode } | { ok: false; message: string };

/** Looks a field path up in the schema; a miss explains which segment is wrong and why. */
export function resolvePath(path: readonly PathSegment[], root = configJsonSchema()): ResolvedPath {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const here = i === 0 ? 'the top level' : formatPath(path.slice(0, i));
    const inner = withoutNull(node);
    if (inner.type === 'object' && inner.properties) {
      const next = inner.properties[String(seg)];
      if (!next) {
        const keys = Object.keys(inner.properties);
        return {
          ok: false,
          message: `unknown key "${String(seg)}"${didYouMean(String(seg), keys)}; valid keys in ${here}: ${keys.join(', ')}`,
        };
      }
      node = next;
    } else if (inner.type === 'array') {
      const index = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : NaN;
      if (!Number.isInteger(index)) {
        return { ok: false, message: `${here} is a list; "${String(seg)}" is not an index` };
      }
      const next = inner.prefixItems ? inner.prefixItems[index] : inner.items || undefined;
      if (!next) return { ok: false, message: `${here} has no item ${index} (${describeAllowed(inner)})` };
      node = next;
    } else {
      return { ok: false, message: `${here} is ${describeAllowed(node)} and has no field "${String(seg)}"` };
    }
  }
  return { ok: true, node };
}

/** "a number in (0, 1]", "one of mlp, vgg-small, resnet18", "a non-empty string or null". */
export function describeAllowed(node: JsonSchemaNode): string {
  if (node.anyOf) return node.anyOf.map(describeAllowed).join(' or ');
  if (node.enum) return `one of ${node.enum.map(String).join(', ')}`;
  switch (node.type) {
    case 'null':
      return 'null';
    case 'integer':
      return describeNumber('an integer', node, true);
    case 'number':
      return describeNumber('a number', node, false);
    case 'boolean':
      return 'true or false';
    case 'string':
      return node.minLength ? 'a non-empty string' : 'a string';
    case 'array':
      return describeArray(node);
    case 'object':
      return `a mapping with keys ${objectKeys(node)?.join(', ') ?? '(any)'}`;
    default:
      return 'a valid value';
  }
}

function describeArray(node: JsonSchemaNode): string {
  if (node.prefixItems) {
    const items = node.prefixItems.map(describeAllowed);
    const same = items.every((d) => d === items[0]);
    return same ? `a list of exactly ${items.length} items, each ${items[0]}` : `a list [${items.join(', ')}]`;
  }
  const item = node.items ? describeAllowed(node.items) : 'anything';
  return `a list of items, each ${item}`;
}

function describeNumber(noun: string, node: JsonSchemaNode, integer: boolean): string {
  let lo: { v: number; open: boolean } | undefined;
  let hi: { v: number; open: boolean } | undefined;
  if (node.exclusiveMinimum !== undefined) lo = { v: node.exclusiveMinimum, open: true };
  else if (node.minimum !== undefined && node.minimum > Number.MIN_SAFE_INTEGER) lo = { v: node.minimum, open: false };
  if (node.exclusiveMaximum !== undefined) hi = { v: node.exclusiveMaximum, open: true };
  else if (node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER) hi = { v: node.maximum, open: false };
  if (integer) {
    // Integers read better with closed bounds: "> 0" is ">= 1".
    if (lo?.open) lo = { v: Math.floor(lo.v) + 1, open: false };
    if (hi?.open) hi = { v: Math.ceil(hi.v) - 1, open: false };
  }
  if (lo && hi) {
    return integer ? `${noun} from ${lo.v} to ${hi.v}` : `${noun} in ${lo.open ? '(' : '['}${lo.v}, ${hi.v}${hi.open ? ')' : ']'}`;
  }
  if (lo) return `${noun} ${lo.open ? '>' : '>='} ${lo.v}`;
  if (hi) return `${noun} ${hi.open ? '<' : '<='} ${hi.v}`;
  return noun;
}

/** A value as it should appear in a message: strings quoted, long values cut. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `' (did you mean "lr"?)'` when a candidate is within a small edit distance, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= limit ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
