// Kubernetes objects checked against the API's OpenAPI schemas, as the npm package
// kubernetes-models compiles them (and @kubernetes-models/prometheus-operator for the
// ServiceMonitor CRD), in two ways:
// - its validators (ajv: types, required fields, enums, formats such as quantities);
// - its TypeScript interfaces, with the compiler's excess-property check: the OpenAPI schemas
//   allow unknown fields (the API server rejects them only under strict field validation), so a
//   misspelled field passes the validators; as an object literal of the interface's type it is
//   a compile error.
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './cli.js';
import type { K8sObject, ManifestDoc } from './k8s-manifests.js';

/** The module of an object's model class: kubernetes-models/<group>/<version>/<Kind>. */
function modelModule(o: K8sObject): string {
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || !/^[A-Za-z]+$/.test(o.kind))
    throw new Error(`apiVersion and kind are required (got ${JSON.stringify(o.apiVersion)}, ${JSON.stringify(o.kind)})`);
  if (o.apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${o.apiVersion}/${o.kind}`;
  return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

type ModelClass = new (data: unknown) => { validate(): void };

/**
 * Problems the schema validators find, one line each naming the document. A patch is partial, so
 * its missing required fields are not problems (everything else is).
 */
export async function schemaProblems(docs: readonly ManifestDoc[]): Promise<string[]> {
  const problems: string[] = [];
  for (const d of docs) {
    let Model: ModelClass;
    try {
      const mod = (await import(modelModule(d.object))) as Record<string, ModelClass>;
      Model = mod[d.object.kind] as ModelClass;
      if (typeof Model !== 'function') throw new Error('no model class');
    } catch (err) {
      problems.push(`${d.where}: unknown apiVersion/kind ${d.object.apiVersion}/${d.object.kind} (${(err as Error).message})`);
      continue;
    }
    try {
      new Model(d.object).validate();
    } catch (err) {
      const errors = (err as { errors?: Array<{ keyword: string; instancePath: string; message?: string }> }).errors;
      if (!errors) throw err;
      for (const e of errors) {
        if (d.role === 'patch' && e.keyword === 'required') continue;
        problems.push(`${d.where} (${d.object.kind} ${d.object.metadata?.name}): ${e.instancePath || '/'} ${e.message ?? e.keyword}`);
      }
    }
  }
  return problems;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  skipLibCheck: true,
  types: [],
};

/**
 * Problems the TypeScript compiler finds when each document is an object literal of its
 * interface (`I<Kind>`; a patch: a deep partial of it): unknown fields at any depth and wrong
 * types, one line each naming the document and the offending line of it.
 */
export function typeProblems(docs: readonly ManifestDoc[]): string[] {
  const file = path.join(REPO_ROOT, 'test', '__k8s_manifest_types__.ts');
  const lines = [
    'type DeepPartial<T> = T extends readonly (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;',
  ];
  const owner: Array<ManifestDoc | undefined> = lines.map(() => undefined);
  docs.forEach((d, i) => {
    let mod: string;
    try {
      mod = modelModule(d.object);
    } catch {
      return; // schemaProblems names it
    }
    const type = d.role === 'patch' ? `DeepPartial<I${d.object.kind}>` : `I${d.object.kind}`;
    const body = JSON.stringify(d.object, null, 1).split('\n');
    lines.push(`import type { I${d.object.kind} as I${d.object.kind}_${i} } from '${mod}';`);
    owner.push(undefined);
    lines.push(`export const doc${i}: ${type.replace(`I${d.object.kind}`, `I${d.object.kind}_${i}`)} = ${body[0]}`, ...body.slice(1));
    for (let k = 0; k < body.length; k++) owner.push(d);
  });
  const source = `${lines.join('\n')}\n`;
  const host = ts.createCompilerHost(COMPILER_OPTIONS);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (f, lang, ...rest) =>
    path.resolve(f) === file ? ts.createSourceFile(f, source, lang) : getSourceFile(f, lang, ...rest);
  host.fileExists = (f) => path.resolve(f) === file || fileExists(f);
  const program = ts.createProgram([file], COMPILER_OPTIONS, host);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const message = ts.flattenDiagnosticMessageText(diag.messageText, ' ');
    if (!diag.file || diag.start === undefined) return message;
    const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
    const d = owner[line];
    return d ? `${d.where} (${d.object.kind} ${d.object.metadata?.name}): ${message} at \`${lines[line]?.trim()}\`` : message;
  });
}
