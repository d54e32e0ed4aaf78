import type { z } from 'zod';
import {
  configJsonSchema,
  describeAllowed,
  didYouMean,
  formatPath,
  formatValue,
  objectKeys,
  resolvePath,
  type PathSegment,
} from './describe.js';
import type { ConfigIssue } from './errors.js';

export interface IssueContext {
  /** Names where each value came from: a file name or a flag. */
  sourceOf: (path: readonly PathSegment[]) => string;
  /** 1-based line of a path in the source file, when there is one. */
  lineOf?: (path: readonly PathSegment[]) => number | undefined;
  /** The text typed after the flag a path's value came from; undefined for a file. */
  flagTextOf?: (path: readonly PathSegment[]) => string | undefined;
}

/**
 * Turns zod issues (parsed with `reportInput: true`) into issues that name the field,
 * the bad value and what is allowed, using the schema rather than zod's generic text.
 */
export function toConfigIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const keys = objectKeysAt(path);
      const where = path.length === 0 ? 'the top level' : formatPath(path);
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        const flagged = ctx.flagTextOf?.(keyPath) !== undefined;
        out.push(
          make(
            keyPath,
            `unknown key${flagged ? ` "${formatPath(keyPath)}"` : ''}${keys ? didYouMean(key, keys) : ''}; allowed keys in ${where}: ${keys?.join(', ') ?? '(none)'}`,
            ctx,
          ),
        );
      }
      continue;
    }
    const input = (issue as { input?: unknown }).input;
    const resolved = resolvePath(path, configJsonSchema());
    if (!resolved.ok) {
      out.push(make(path, `${issue.message}, got ${formatValue(input)}`, ctx));
      continue;
    }
    const allowed = describeAllowed(resolved.node);
    let hint = '';
    if (issue.code === 'invalid_value' && typeof input === 'string') {
      hint = didYouMean(input, issue.values.map(String));
    }
    if (ctx.flagTextOf?.(path) !== undefined) {
      out.push(make(path, `expected ${path.length === 0 ? 'the config' : formatPath(path)} to be ${allowed}${hint}`, ctx));
      continue;
    }
    const subject = path.length === 0 ? 'the config must be' : 'must be';
    out.push(make(path, `${subject} ${allowed}, got ${formatValue(input)}${hint}`, ctx));
  }
  // In file order, so the list reads top to bottom alongside the file (sort is stable).
  return out.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

function objectKeysAt(path: readonly PathSegment[]): string[] | undefined {
  const resolved = resolvePath(path, configJsonSchema());
  return resolved.ok ? objectKeys(resolved.node) : undefined;
}

function make(path: readonly PathSegment[], message: string, ctx: IssueContext): ConfigIssue {
  const issue: ConfigIssue = { path: formatPath(path), message, source: ctx.sourceOf(path) };
  const line = ctx.lineOf?.(path);
  if (line !== undefined) issue.line = line;
  const value = ctx.flagTextOf?.(path);
  if (value !== undefined) issue.value = value;
  return issue;
}
