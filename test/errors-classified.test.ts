// Every error class in the code base (src/, worker/, coordinator/; tests excluded) is classified
// once. A user error extends UserError (src/util/errors.ts) or declares `userFacing = true`:
// handleError prints its message without a stack and exits 1 (2 for bad usage). Anything else
// must be listed in INTERNAL below with why reaching the user means a bug; handleError prints
// those with a stack and "this is a bug". A new error class that is neither fails this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { REPO, sourceFiles } from './helpers/import-graph.js';

/** The internal (bug) error classes, each with why it never reaches a user except through a bug. */
const INTERNAL: Readonly<Record<string, string>> = {
  NamedError: 'a base that names an error after its class; never thrown itself, its subclasses are classified each',
  CollectiveConfigError:
    "a caller broke the all-reduce's contract (bucket sizes, step order, group options); flags and configs are checked before they get there",
  MembershipChangedError: 'control flow of the elastic loop (reset and re-sync); caught by the loop, never leaves it',
  TrainingError: "the training loop's own invariant broke (a gradient arrived twice in one backward pass)",
  TrainingStoppedError:
    'a stop (Ctrl-C, the STOP of a coordinator), not a failure: bnn train exits 130 and a worker 0 before any error handler',
  NonFiniteStateError:
    "saveCheckpoint's refusal of a NaN or Inf state: the training loop turns it into a DivergedError (a user error) naming the tensor",
  RunStoppedError: 'a TrainingStoppedError of a worker (the coordinator stopped its run): a stop, handled where the run ends',
  WorkerShutdownError:
    'a TrainingStoppedError of a worker (SIGTERM/SIGINT): the run in progress ends at a step boundary, the worker exits 0',
  RpcError:
    "a handler's answer inside the coordinator, or on a client a status that is the server's fault (INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS); refusals are RpcRefusedError",
};

/** JavaScript's own error classes: an extends chain that reaches one of these makes an error class. */
const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError']);

interface ClassInfo {
  name: string;
  /** Repo-relative file:line. */
  at: string;
  /** The extends expression as written (`UserError`, `grpc.X`). */
  base: string;
  /** Declares a `userFacing` member (property or getter). */
  declaresUserFacing: boolean;
}

/** Every class with an `extends` clause in these sources (top level or nested), by parsing them. */
export function classesIn(files: readonly { path: string; text: string }[]): ClassInfo[] {
  const out: ClassInfo[] = [];
  for (const { path, text } of files) {
    const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const visit = (node: ts.Node): void => {
      if ((ts.isClassDeclaration(node) || ts.isClassExpression(node)) && node.name) {
        const extendsClause = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword);
        const base = extendsClause?.types[0]?.expression.getText(source);
        if (base !== undefined) {
          const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
          const declaresUserFacing = node.members.some((m) => m.name !== undefined && m.name.getText(source) === 'userFacing');
          out.push({ name: node.name.text, at: `${path}:${line}`, base, declaresUserFacing });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

interface Classification {
  /** Error classes by name. */
  errors: Map<string, ClassInfo>;
  user: string[];
  internal: string[];
  /** Neither user-facing nor listed. */
  unclassified: string[];
  /** User-facing and listed as internal too. */
  both: string[];
  /** Listed as internal but no such error class exists. */
  stale: string[];
  /** Names used by more than one error class (handleError's `type` would be ambiguous). */
  duplicates: string[];
}

export function classify(classes: readonly ClassInfo[], internal: Readonly<Record<string, string>>): Classification {
  const byName = new Map<string, ClassInfo[]>();
  for (const c of classes) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  const baseName = (c: ClassInfo) => c.base.split('.').at(-1)!;
  // An error class: its chain of local classes ends at a built-in error, or at a foreign class named *Error.
  const isError = (c: ClassInfo, seen = new Set<string>()): boolean => {
    const b = baseName(c);
    if (BUILTIN_ERRORS.has(b)) return true;
    const local = byName.get(b)?.[0];
    if (!local) return b.endsWith('Error');
    if (seen.has(b)) return false;
    return isError(local, seen.add(b));
  };
  const isUser = (c: ClassInfo): boolean => {
    if (c.name === 'UserError' || c.declaresUserFacing) return true;
    const local = byName.get(baseName(c))?.[0];
    return local !== undefined && local !== c && isUser(local);
  };
  const errors = new Map<string, ClassInfo>();
  const duplicates: string[] = [];
  for (const c of classes.filter((x) => isError(x))) {
    if (errors.has(c.name)) duplicates.push(`${c.name} (${errors.get(c.name)!.at}, ${c.at})`);
    else errors.set(c.name, c);
  }
  const names = [...errors.keys()].sort();
  const user = names.filter((n) => isUser(errors.get(n)!));
  const listed = names.filter((n) => n in internal);
  return {
    errors,
    user,
    internal: listed.filter((n) => !user.includes(n)),
    unclassified: names.filter((n) => !user.includes(n) && !(n in internal)).map((n) => `${n} (${errors.get(n)!.at})`),
    both: user.filter((n) => n in internal),
    stale: Object.keys(internal).filter((n) => !errors.has(n)),
    duplicates,
  };
}

function codeBase(): { path: string; text: string }[] {
  return ['src', 'worker', 'coordinator']
    .flatMap((root) => sourceFiles(join(REPO, root)))
    .map((file) => ({ path: relative(REPO, file), text: readFileSync(file, 'utf8') }));
}

test('errors classified - every error class in the code base is a user error or a listed internal one', () => {
  const c = classify(classesIn(codeBase()), INTERNAL);
  assert.ok(c.errors.size >= 40, `found ${c.errors.size} error classes: the scan must have missed files`);
  assert.deepEqual(
    c.unclassified,
    [],
    'each of these must extend UserError (a user error: message without a stack) or be listed in INTERNAL with why it is a bug',
  );
  assert.deepEqual(c.both, [], 'user-facing but listed as internal: remove them from INTERNAL');
  assert.deepEqual(c.stale, [], 'listed as internal but no such error class exists: remove them from INTERNAL');
  assert.deepEqual(c.duplicates, [], 'two error classes share a name (the `type` of --json errors)');
  for (const family of [
    'DataFormatError',
    'DatasetNotFoundError',
    'StoreBusyError',
    'StoreFullError',
    'StoreCorruptError',
    'StoreReadOnlyError',
    'CheckpointError',
    'TransportUnreachableError',
    'RpcUnavailableError',
    'CoordinatorLostError',
  ]) {
    assert.ok(c.user.includes(family), `${family} is a user error`);
  }
});

test('errors classified - the scan finds unclassified, doubly classified and stale classes (it can fail)', () => {
  const files = [
    {
      path: 'src/x/errors.ts',
      text: `
        export class UserError extends Error { readonly userFacing = true as const; }
        export class Friendly extends UserError {}
        export class Marked extends SomeBaseError { readonly userFacing = true as const; }
        export class Forgotten extends Error {}
        export class Inner extends Forgotten {}
        export class Listed extends TypeError {}
        export class Twice extends Friendly {}
        export class NotAnError extends Map {}
        function f() { return class Nested extends RangeError {}; }
      `,
    },
  ];
  const c = classify(classesIn(files), { Listed: 'why', Twice: 'why', Gone: 'why' });
  assert.deepEqual(c.user, ['Friendly', 'Marked', 'Twice', 'UserError']);
  assert.deepEqual(c.internal, ['Listed']);
  assert.deepEqual(c.unclassified, ['Forgotten (src/x/errors.ts:5)', 'Inner (src/x/errors.ts:6)', 'Nested (src/x/errors.ts:10)']);
  assert.deepEqual(c.both, ['Twice']);
  assert.deepEqual(c.stale, ['Gone']);
  assert.ok(!c.errors.has('NotAnError'));
});
