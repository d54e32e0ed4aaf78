// Reading deploy/k8s as kustomize would: each kustomization's resources, patches and generators,
// and, where kubectl is installed, what `kubectl kustomize` renders.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './cli.js';

export const K8S_DIR = path.join(REPO_ROOT, 'deploy', 'k8s');

/** A Kubernetes object, as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** One document and where it came from: `resource` (complete), `patch` (a strategic merge patch), `rendered`. */
export interface ManifestDoc {
  where: string;
  role: 'resource' | 'patch' | 'rendered';
  object: K8sObject;
}

/** What the generators of a kustomization make: name → keys. */
export interface Generated {
  secrets: Map<string, Set<string>>;
  configMaps: Map<string, Set<string>>;
}

interface Kustomization {
  kind?: string;
  resources?: string[];
  components?: string[];
  patches?: Array<{ path?: string; patch?: string }>;
  configMapGenerator?: Array<{ name: string; files?: string[]; envs?: string[]; literals?: string[] }>;
  secretGenerator?: Array<{ name: string; files?: string[]; envs?: string[]; literals?: string[] }>;
  [field: string]: unknown;
}

/** The fields a kustomization here may use: a misspelled one would be ignored by nothing but kubectl. */
const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'labels',
  'resources',
  'components',
  'patches',
  'configMapGenerator',
  'secretGenerator',
  'generatorOptions',
  'images',
]);

/** Every document of a YAML file; a file that does not parse throws, naming it. */
export function readYamlObjects(file: string, text = readFileSync(file, 'utf8')): unknown[] {
  return parseAllDocuments(text).flatMap((d, i) => {
    if (d.errors.length > 0) throw new Error(`${file}: document ${i + 1}: ${d.errors.map((e) => e.message).join('; ')}`);
    const v = d.toJS() as unknown;
    return v === null || v === undefined ? [] : [v];
  });
}

/** Keys of a kustomize env file (`key=value` lines; `#` comments). */
export function envFileKeys(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`${file}: "${t}" is not key=value`);
    out.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return out;
}

/** Every yaml file under `dir`, relative to it. */
export function yamlFilesUnder(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel)).flatMap((name) => {
    const r = path.join(rel, name);
    if (statSync(path.join(dir, r)).isDirectory()) return yamlFilesUnder(dir, r);
    return /\.ya?ml$/.test(name) ? [r] : [];
  });
}

export interface KustomizeTree {
  docs: ManifestDoc[];
  generated: Generated;
  /** Files (relative to K8S_DIR) a kustomization names. */
  referenced: Set<string>;
  problems: string[];
}

/**
 * Reads the kustomization in `dir` and those it includes, without kubectl: its resources and
 * patches as documents, what its generators make (secrets from `<envs>.example` where the env
 * file itself is not committed), and every reference that does not resolve as a problem.
 */
export function readKustomizeTree(dir: string, root = K8S_DIR, tree?: KustomizeTree): KustomizeTree {
  const t: KustomizeTree = tree ?? {
    docs: [],
    generated: { secrets: new Map(), configMaps: new Map() },
    referenced: new Set(),
    problems: [],
  };
  const kfile = path.join(dir, 'kustomization.yaml');
  const where = (f: string) => path.relative(root, path.join(dir, f));
  if (!existsSync(kfile)) {
    t.problems.push(`${path.relative(root, dir)}: no kustomization.yaml`);
    return t;
  }
  t.referenced.add(where('kustomization.yaml'));
  const k = readYamlObjects(kfile)[0] as Kustomization;
  for (const field of Object.keys(k))
    if (!KUSTOMIZATION_FIELDS.has(field)) t.problems.push(`${where('kustomization.yaml')}: unknown field "${field}"`);
  for (const r of [...(k.resources ?? []), ...(k.components ?? [])]) {
    const p = path.join(dir, r);
    if (!existsSync(p)) t.problems.push(`${where('kustomization.yaml')}: ${r} does not exist`);
    else if (statSync(p).isDirectory()) readKustomizeTree(p, root, t);
    else addDocs(t, where(r), 'resource', p);
  }
  for (const patch of k.patches ?? []) {
    if (patch.path === undefined) continue;
    const p = path.join(dir, patch.path);
    if (existsSync(p)) addDocs(t, where(patch.path), 'patch', p);
    else t.problems.push(`${where('kustomization.yaml')}: patch ${patch.path} does not exist`);
  }
  readGenerators(t, dir, k, where);
  return t;
}

function addDocs(t: KustomizeTree, rel: string, role: ManifestDoc['role'], file: string): void {
  t.referenced.add(rel);
  readYamlObjects(file).forEach((object, i) => {
    t.docs.push({ where: `${rel}#${i + 1}`, role, object: object as K8sObject });
  });
}

function readGenerators(t: KustomizeTree, dir: string, k: Kustomization, where: (f: string) => string): void {
  const gens = [
    ...(k.secretGenerator ?? []).map((g) => ({ g, into: t.generated.secrets })),
    ...(k.configMapGenerator ?? []).map((g) => ({ g, into: t.generated.configMaps })),
  ];
  for (const { g, into } of gens) {
    const keys = new Set<string>();
    for (const f of g.files ?? []) {
      const [key, file] = f.includes('=') ? (f.split('=', 2) as [string, string]) : [path.basename(f), f];
      keys.add(key);
      if (existsSync(path.join(dir, file))) t.referenced.add(where(file));
      else t.problems.push(`${where('kustomization.yaml')}: ${g.name} names ${file}, which does not exist`);
    }
    for (const env of g.envs ?? []) {
      // a secret's env file stays out of git; its .example lists the same keys
      const file = [env, `${env}.example`].map((f) => path.join(dir, f)).find((f) => existsSync(f));
      if (file === undefined)
        t.problems.push(`${where('kustomization.yaml')}: ${g.name} names ${env}, and neither it nor ${env}.example exists`);
      else for (const key of envFileKeys(file).keys()) keys.add(key);
    }
    for (const lit of g.literals ?? []) keys.add(lit.split('=')[0] as string);
    into.set(g.name, keys);
  }
}

/** The kubectl that renders kustomizations, or why there is none. */
export function kubectl(): { bin: string } | { missing: string } {
  const bin = process.env.KUBECTL ?? 'kubectl';
  const r = spawnSync(bin, ['version', '--client'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    return {
      missing: `no kubectl (${bin}: ${r.error?.message ?? r.stderr.trim()}); rendered overlays not checked (kubectl is not a Debian package)`,
    };
  return { bin };
}

/** `kubectl kustomize <dir>`, parsed; a failure throws with kubectl's message. */
export function render(bin: string, dir: string): K8sObject[] {
  const out = execFileSync(bin, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return readYamlObjects(dir, out) as K8sObject[];
}
