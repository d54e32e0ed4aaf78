import { z } from 'zod';
import { describeAllowed, didYouMean, type JsonSchemaNode } from './describe.js';
import { badFlagValue, UserError } from '../util/errors.js';

/**
 * The one flag layer: a command checks its options here, once, before any I/O.
 *
 *   const flagsSchema = z.object({
 *     local: numberFlag(z.number().int().min(1).max(64)),
 *     threadsPerWorker: numberFlag(z.number().int().min(0).max(1024)),
 *     compression: choiceFlag(COMPRESSIONS).optional(),
 *   });
 *   ...action(ctx, async (config: string, raw: LaunchFlags) => {
 *     const f = parseFlags(flagsSchema, raw);   // typed; or FlagError, exit 2
 *
 * `parseFlags(schema, raw)` takes a zod object keyed as commander names the options
 * (`--threads-per-worker` arrives as `threadsPerWorker`) and the options commander passed
 * the action. Every bad flag is reported at once, one line each, in one FlagError (exit 2):
 *
 *   --threads-per-worker: 'abc' is not valid; expected an integer from 0 to 1024
 *
 * naming the flag as typed, the value as given and what is valid. What is valid comes from
 * the field's schema through describeAllowed (src/config/describe.ts, the describer of
 * config fields): bounds, enum values, lists. A refine's or textFlag's message says it where
 * the schema cannot, and `.describe(text)` on a field overrides both.
 *
 * The builders below read flag text (always a string from commander): numberFlag,
 * choiceFlag, listFlag, textFlag, fileFlag, hostPortFlag. Checks across flags (`--json` with
 * `--csv`) come after parseFlags as a UserError with exitCode 2; a well-formed value that
 * names nothing (a run id not in the store) is a failure at run time, exit 1. The run-config
 * override flags (`--epochs`, `--set`) are checked by applyOverrides (src/config/overrides.ts)
 * against the config schema, in the same wording.
 */

/** One bad flag value. */
export interface FlagIssue {
  /** As typed: `--threads-per-worker`. */
  flag: string;
  /** The text given (one item of a comma-separated list, when only that item is bad); undefined when none was. */
  value?: string;
  /** What would be valid: `an integer from 0 to 1024`, `one of auto, native, cpu`. */
  expected: string;
}

/** Bad flag values, every one named with its value and what is valid; bad usage, exit 2. */
export class FlagError extends UserError {
  constructor(readonly issues: readonly FlagIssue[]) {
    super(issues.map(formatFlagIssue).join('\n'), { exitCode: 2 });
    this.name = 'FlagError';
  }

  override details(): Record<string, unknown> {
    return { issues: this.issues };
  }
}

/**
 * The error with each issue whose value came from an environment variable named as that
 * variable (`BNN_COORDINATOR_PORT (--port): 'x' is not valid; ...`); `envOf` gives the variable
 * of a flag, or undefined when the flag's value was typed or defaulted.
 */
export function namingEnvSources(err: FlagError, envOf: (flag: string) => string | undefined): FlagError {
  let renamed = false;
  const issues = err.issues.map((issue) => {
    const env = envOf(issue.flag);
    if (env === undefined) return issue;
    renamed = true;
    return { ...issue, flag: `${env} (${issue.flag})` };
  });
  return renamed ? new FlagError(issues) : err;
}

function formatFlagIssue(issue: FlagIssue): string {
  const why = `expected ${issue.expected}`;
  return issue.value === undefined ? `${issue.flag}: no value given; ${why}` : badFlagValue(issue.flag, issue.value, why);
}

/**
 * The flag commander parsed into option `key`: commander camelCases `--threads-per-worker`
 * to `threadsPerWorker`, and every flag of ours is lower-case words, so this is exact
 * (flags.test.ts checks it for every registered option).
 */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The options of a command checked by `schema`; FlagError naming every bad one. */
export function parseFlags<S extends z.ZodType>(schema: S, raw: object): z.output<S> {
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throw new FlagError(toFlagIssues(schema, raw as Record<string, unknown>, result.error.issues));
}

function toFlagIssues(schema: z.ZodType, raw: Record<string, unknown>, issues: readonly z.core.$ZodIssue[]): FlagIssue[] {
  const shape = shapeOf(schema);
  const out = new Map<string, FlagIssue>();
  for (const issue of issues) {
    const [key, index] = issue.path;
    if (typeof key !== 'string')
      throw new Error(`a flag schema checks each flag on its own field; got an issue at the top: ${issue.message}`);
    const field = shape?.[key];
    const node = field === undefined ? {} : jsonSchemaOf(field);
    const given = textOf(raw[key]);
    const item = typeof index === 'number' && node.type === 'array' && node.items ? node.items : undefined;
    const at = item ? `${key}.${String(index)}` : key;
    if (out.has(at)) continue;
    const value = item ? (textOf((issue as { input?: unknown }).input) ?? given) : given;
    const described = item ?? node;
    let expected = described.description ?? (issue.code === 'custom' ? issue.message : describeFlag(described));
    if (described.enum && value !== undefined) expected += didYouMean(value, described.enum.map(String));
    out.set(at, { flag: flagName(key), ...(value === undefined ? {} : { value }), expected });
  }
  return [...out.values()];
}

/** Like describeAllowed, but a list is flag text: comma-separated. */
function describeFlag(node: JsonSchemaNode): string {
  if (node.type !== 'array' || !node.items) return describeAllowed(node);
  const item = node.items;
  if (item.description) return `a comma-separated list of ${item.description}`;
  if (item.enum) return `a comma-separated list of ${item.enum.map(String).join(', ')}`;
  return `a comma-separated list, each ${describeAllowed(item)}`;
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  if (schema instanceof z.ZodObject) return schema.shape as Record<string, z.ZodType>;
  if (schema instanceof z.ZodPipe) return shapeOf(schema.in as z.ZodType);
  return undefined;
}

function jsonSchemaOf(field: z.ZodType): JsonSchemaNode {
  try {
    return z.toJSONSchema(field, { io: 'output', unrepresentable: 'any' }) as JsonSchemaNode;
  } catch {
    return {};
  }
}

function textOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.map(String).join(' ') : String(value);
}

const NUMBER_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** Flag text as a number, then checked by `schema`: `numberFlag(z.number().int().min(1))`. '', 'ten' and '0x10' are not numbers. */
export function numberFlag<T extends z.ZodType<number>>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' && NUMBER_TEXT.test(v) ? Number(v) : v), schema);
}

/** One of `values`, matched case-insensitively, returned as spelled in `values`. */
export function choiceFlag<const T extends readonly string[]>(values: T) {
  return z.preprocess(
    (v) => (typeof v === 'string' ? (values.find((c) => c.toLowerCase() === v.trim().toLowerCase()) ?? v) : v),
    z.enum(values),
  );
}

/** A comma-separated list (`1,2,4`), blanks around items ignored, at least one item, each checked by `item`; `unique` drops repeats. */
export function listFlag<T extends z.ZodType>(item: T, { unique = false }: { unique?: boolean } = {}) {
  const split = (text: string) => {
    const items = text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    return unique ? [...new Set(items)] : items;
  };
  return z.preprocess((v) => (typeof v === 'string' ? split(v) : v), z.array(item).min(1));
}

/** Flag text read by `parse`, which returns undefined for text it refuses; `expected` says what it accepts. */
export function textFlag<T>(expected: string, parse: (text: string) => T | undefined) {
  return z
    .string()
    .transform((text, ctx) => {
      const value = parse(text);
      if (value !== undefined) return value;
      ctx.addIssue({ code: 'custom', message: expected });
      return z.NEVER;
    })
    .describe(expected);
}

/** A file or folder path: any text but none. */
export const fileFlag = z.string().min(1).describe('a path');

const HOST_PORT = /^[^:\s[\]]+:\d+$|^\[[^\]\s]+\]:\d+$/;

/** `host:port` (or `[v6 address]:port`) of a coordinator. */
export const hostPortFlag = textFlag('host:port', (text) => (HOST_PORT.test(text) ? text : undefined));
