// The pods a set of Kubernetes objects describes, and the references between objects that
// kubectl apply would accept but a cluster would not run: a Secret key, a ConfigMap, a named
// port, a Service selecting no pod.
import type { Generated, K8sObject, ManifestDoc } from './k8s-manifests.js';

export interface Probe {
  httpGet?: { path?: string; port: number | string };
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: unknown };
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
}
interface PodSpec {
  containers?: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string } }>;
}

/** A pod template: its owner, labels, spec and claim templates. */
export interface Pod {
  where: string;
  owner: K8sObject;
  role: ManifestDoc['role'];
  labels: Record<string, string>;
  spec: PodSpec;
  claims: string[];
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);

export function podsOf(docs: readonly ManifestDoc[]): Pod[] {
  return docs.flatMap((d) => {
    if (!WORKLOADS.has(d.object.kind)) return [];
    const spec = d.object.spec as {
      template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec };
      volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
    };
    return [
      {
        where: `${d.where} (${d.object.kind} ${d.object.metadata.name})`,
        owner: d.object,
        role: d.role,
        labels: spec?.template?.metadata?.labels ?? {},
        spec: spec?.template?.spec ?? {},
        claims: (spec?.volumeClaimTemplates ?? []).map((c) => c.metadata.name),
      },
    ];
  });
}

export const probesOf = (c: Container): Array<[string, Probe]> =>
  (['startupProbe', 'livenessProbe', 'readinessProbe'] as const).flatMap((k) => (c[k] ? [[k, c[k]] as [string, Probe]] : []));

/** The container port a probe's port (a number or a port name) is. */
export function probePort(c: Container, port: number | string): number | undefined {
  const p = (c.ports ?? []).find((x) => (typeof port === 'number' ? x.containerPort === port : x.name === port));
  return p?.containerPort;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Secrets and ConfigMaps among `objects`, and what generators make: name → keys. */
function available(objects: readonly K8sObject[], generated: Generated): Generated {
  const out: Generated = { secrets: new Map(generated.secrets), configMaps: new Map(generated.configMaps) };
  for (const o of objects) {
    const keys = new Set(Object.keys({ ...(o.data as object), ...(o.stringData as object) }));
    if (o.kind === 'Secret') out.secrets.set(o.metadata.name, keys);
    if (o.kind === 'ConfigMap') out.configMaps.set(o.metadata.name, keys);
  }
  return out;
}

/** Every reference among complete objects that does not resolve, one line each. */
export function referenceProblems(docs: readonly ManifestDoc[], generated: Generated): string[] {
  const objects = docs.filter((d) => d.role !== 'patch').map((d) => d.object);
  const have = available(objects, generated);
  const pods = podsOf(docs.filter((d) => d.role !== 'patch'));
  const problems = pods.flatMap((p) => podProblems(p, have));
  const services = objects.filter((o) => o.kind === 'Service');
  for (const s of services) {
    const spec = s.spec as { selector?: Record<string, string>; ports?: Array<{ name?: string; targetPort?: number | string }> };
    const selected = pods.filter((p) => matches(spec.selector ?? {}, p.labels));
    if (selected.length === 0) problems.push(`Service ${s.metadata.name}: its selector ${JSON.stringify(spec.selector)} matches no pod`);
    for (const port of spec.ports ?? []) {
      if (typeof port.targetPort !== 'string') continue;
      const named = selected.some((p) => (p.spec.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === port.targetPort)));
      if (!named) problems.push(`Service ${s.metadata.name}: targetPort "${port.targetPort}" is no container port of the pods it selects`);
    }
  }
  for (const o of objects) {
    const serviceName = o.kind === 'StatefulSet' ? (o.spec as { serviceName?: string }).serviceName : undefined;
    if (serviceName !== undefined && !services.some((s) => s.metadata.name === serviceName))
      problems.push(`StatefulSet ${o.metadata.name}: serviceName ${serviceName} is no Service`);
    if (o.kind === 'ServiceMonitor') problems.push(...serviceMonitorProblems(o, services));
  }
  return problems;
}

function podProblems(p: Pod, have: Generated): string[] {
  const problems: string[] = [];
  const volumes = new Set([...(p.spec.volumes ?? []).map((v) => v.name), ...p.claims]);
  for (const v of p.spec.volumes ?? []) {
    if (v.configMap && !have.configMaps.has(v.configMap.name))
      problems.push(`${p.where}: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
    if (v.secret && !have.secrets.has(v.secret.secretName)) problems.push(`${p.where}: volume ${v.name}: no Secret ${v.secret.secretName}`);
  }
  for (const c of p.spec.containers ?? []) {
    for (const m of c.volumeMounts ?? [])
      if (!volumes.has(m.name)) problems.push(`${p.where}: ${c.name} mounts ${m.name}, no volume of the pod`);
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
      const pool = e.valueFrom?.secretKeyRef ? have.secrets : have.configMaps;
      if (ref && !pool.get(ref.name)?.has(ref.key))
        problems.push(
          `${p.where}: ${c.name} env ${e.name}: no key ${ref.key} in ${ref.name} (has: ${[...(pool.get(ref.name) ?? [])].join(', ')})`,
        );
    }
    for (const [kind, probe] of probesOf(c)) {
      const port = probe.httpGet?.port ?? probe.grpc?.port ?? probe.tcpSocket?.port;
      if (port === undefined || probePort(c, port) === undefined)
        problems.push(`${p.where}: ${c.name} ${kind}: port ${JSON.stringify(port)} is none of the container's ports`);
    }
  }
  return problems;
}

function serviceMonitorProblems(o: K8sObject, services: readonly K8sObject[]): string[] {
  const spec = o.spec as { selector?: { matchLabels?: Record<string, string> }; endpoints?: Array<{ port?: string }> };
  const selected = services.filter((s) => matches(spec.selector?.matchLabels ?? {}, s.metadata.labels ?? {}));
  if (selected.length === 0) return [`ServiceMonitor ${o.metadata.name}: selects no Service`];
  const portNames = new Set(selected.flatMap((s) => ((s.spec as { ports?: Array<{ name?: string }> }).ports ?? []).map((x) => x.name)));
  return (spec.endpoints ?? [])
    .filter((e) => !portNames.has(e.port))
    .map(
      (e) => `ServiceMonitor ${o.metadata.name}: endpoint port ${e.port} is no port of ${selected.map((s) => s.metadata.name).join(', ')}`,
    );
}
