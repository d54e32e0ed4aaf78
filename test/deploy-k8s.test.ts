// deploy/k8s: every manifest against the Kubernetes schemas (unknown fields included), the
// references between them, the bnn command lines and env vars against the CLI and sources, the
// launch Job's run config, and the probes against real servers: nats-servers from the
// ConfigMap's nats.conf and `bnn coordinator` with the manifest's own flags. Without kubectl
// (CI: it is no Debian package) the committed documents are checked as they are; with it, what
// each overlay renders is checked too.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { spawnCli } from './helpers/cluster.js';
import { bnnContainers, containerCliProblems, envNamesInSources } from './helpers/k8s-cli.js';
import {
  type Generated,
  type K8sObject,
  K8S_DIR,
  type KustomizeTree,
  type ManifestDoc,
  envFileKeys,
  kubectl,
  readKustomizeTree,
  render,
  yamlFilesUnder,
} from './helpers/k8s-manifests.js';
import { type Container, podsOf, probePort, probesOf, referenceProblems } from './helpers/k8s-pods.js';
import { freePorts, grpcHealth, natsLogin, startNatsFromConf, until } from './helpers/k8s-probes.js';
import { schemaProblems, typeProblems } from './helpers/k8s-schema.js';
import { tmpDir } from './helpers/tmp.js';

/** What one deploys (the overlays, the launch Job) and the optional component. */
const ENTRY_POINTS = ['overlays/cpu', 'overlays/gpu', 'launch', 'components/prometheus-operator'];
const SECRETS_EXAMPLE = path.join(K8S_DIR, 'base', 'secrets.env.example');

const trees = () => ENTRY_POINTS.map((e) => readKustomizeTree(path.join(K8S_DIR, e)));
/** Each committed document once (the overlays share the base). */
function committedDocs(ts: readonly KustomizeTree[]): ManifestDoc[] {
  const seen = new Map<string, ManifestDoc>();
  for (const d of ts.flatMap((x) => x.docs)) seen.set(d.where, d);
  return [...seen.values()];
}
function mergedGenerated(ts: readonly KustomizeTree[]): Generated {
  return {
    secrets: new Map(ts.flatMap((x) => [...x.generated.secrets])),
    configMaps: new Map(ts.flatMap((x) => [...x.generated.configMaps])),
  };
}
const byName = (docs: readonly ManifestDoc[], kind: string, name: string) => {
  const d = docs.find((x) => x.role === 'resource' && x.object.kind === kind && x.object.metadata.name === name);
  assert.ok(d, `no ${kind} ${name} in deploy/k8s`);
  return d.object;
};
const containerOf = (o: K8sObject, name: string): Container => {
  const c = (o.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers.find((x) => x.name === name);
  assert.ok(c, `${o.kind} ${o.metadata.name} has no container ${name}`);
  return c;
};
/** The value after `flag` in a command line. */
const flagValue = (args: readonly string[], flag: string) => {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
};
/** A container's env with Secret keys taken from secrets.env.example and the pod name given. */
function envOf(c: Container, podName: string): Record<string, string> {
  const secret = envFileKeys(SECRETS_EXAMPLE);
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (ref) env[e.name] = secret.get(ref.key) ?? assert.fail(`secrets.env.example has no ${ref.key}`);
    else if (e.valueFrom?.fieldRef) env[e.name] = podName;
  }
  return env;
}

test('deploy/k8s - every kustomization resolves (resources, patches, generator files) and every yaml file is part of one', () => {
  const ts = trees();
  assert.deepEqual(
    ts.flatMap((x) => x.problems),
    [],
  );
  const referenced = new Set(ts.flatMap((x) => [...x.referenced]));
  assert.deepEqual(
    yamlFilesUnder(K8S_DIR).filter((f) => !referenced.has(f)),
    [],
    'yaml files no kustomization names',
  );
});

test('deploy/k8s - every committed document is valid against the Kubernetes OpenAPI schemas, unknown fields included', async () => {
  const docs = committedDocs(trees());
  assert.ok(docs.length >= 10, `only ${docs.length} documents`);
  assert.deepEqual(await schemaProblems(docs), []);
  assert.deepEqual(typeProblems(docs), []);
});

test('deploy/k8s - references resolve: Secret keys, ConfigMaps, volumes, probe ports, Service selectors and target ports, serviceName, ServiceMonitor', () => {
  const ts = trees();
  assert.deepEqual(referenceProblems(committedDocs(ts), mergedGenerated(ts)), []);
});

test('deploy/k8s - every bnn command line is one the CLI accepts, and every BNN_* env var it sets is read by the sources', async () => {
  const docs = committedDocs(trees());
  const uses = bnnContainers(podsOf(docs));
  // coordinator, worker, the two overlays' workers, the launch Job
  assert.ok(uses.length >= 5, uses.map((u) => u.where).join('\n'));
  const problems = (await Promise.all(uses.map((u) => containerCliProblems(u.where, u.container)))).flat();
  assert.deepEqual(problems, []);
  const read = envNamesInSources();
  const unread = uses.flatMap((u) =>
    (u.container.env ?? []).filter((e) => e.name.startsWith('BNN_') && !read.has(e.name)).map((e) => `${u.where}: ${e.name}`),
  );
  assert.deepEqual(unread, [], 'BNN_* variables nothing in src/, coordinator/ or worker/ reads');
});

test("deploy/k8s - the launch Job's run config is a valid run config, mounted where the Job's bnn launch reads it", async () => {
  const docs = committedDocs(trees());
  const job = byName(docs, 'Job', 'bnn-launch');
  const c = containerOf(job, 'launch');
  const file = c.args?.at(-1) ?? '';
  const mount = c.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${file} is under no volume mount of the Job`);
  const config = await loadConfig(path.join(K8S_DIR, 'launch', path.basename(file)));
  assert.equal(config.checkpointStore, 'nats', 'pods share no volume: checkpoints go to the NATS object store');
  assert.equal(flagValue(c.args ?? [], '--workers'), '2');
});

const kc = kubectl();

/** deploy/k8s copied to a temp dir with secrets.env from its example, and the cpu overlay with the ServiceMonitor component added. */
async function renderable(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await tmpDir({ t });
  const root = dir.join('k8s');
  cpSync(K8S_DIR, root, { recursive: true });
  writeFileSync(path.join(root, 'base', 'secrets.env'), readFileSync(SECRETS_EXAMPLE));
  cpSync(path.join(root, 'overlays', 'cpu'), path.join(root, 'overlays', 'cpu-prometheus'), { recursive: true });
  // as the component's kustomization.yaml says to add it
  const k = path.join(root, 'overlays', 'cpu-prometheus', 'kustomization.yaml');
  writeFileSync(k, `${readFileSync(k, 'utf8')}components:\n  - ../../components/prometheus-operator\n`);
  return root;
}

test('deploy/k8s - kubectl kustomize renders each overlay, the launch Job and the ServiceMonitor component into valid, consistent objects', {
  skip: 'missing' in kc ? kc.missing : false,
}, async (t) => {
  const bin = (kc as { bin: string }).bin;
  const root = await renderable(t);
  const out: Record<string, ManifestDoc[]> = {};
  for (const name of ['overlays/cpu', 'overlays/gpu', 'overlays/cpu-prometheus', 'launch'])
    out[name] = render(bin, path.join(root, name)).map((object, i) => ({ where: `${name}#${i + 1}`, role: 'rendered', object }));
  const all = Object.values(out).flat();
  assert.deepEqual(await schemaProblems(all), []);
  assert.deepEqual(typeProblems(all), []);
  const none: Generated = { secrets: new Map(), configMaps: new Map() };
  for (const set of [out['overlays/cpu'], out['overlays/gpu'], out['overlays/cpu-prometheus'], [...out['overlays/cpu']!, ...out.launch!]])
    assert.deepEqual(referenceProblems(set!, none), []);
  const uses = bnnContainers(podsOf(all));
  assert.deepEqual((await Promise.all(uses.map((u) => containerCliProblems(u.where, u.container)))).flat(), []);
  for (const o of all.map((d) => d.object))
    if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'bnn', `${o.kind} ${o.metadata.name}`);

  const worker = (name: string) =>
    containerOf(
      byName(
        out[name]!.map((d) => ({ ...d, role: 'resource' as const })),
        'Deployment',
        'bnn-worker',
      ),
      'worker',
    );
  const coordinator = (name: string) =>
    containerOf(
      byName(
        out[name]!.map((d) => ({ ...d, role: 'resource' as const })),
        'StatefulSet',
        'bnn-coordinator',
      ),
      'coordinator',
    );
  const gpu = worker('overlays/gpu');
  assert.equal(gpu.resources?.limits?.['nvidia.com/gpu'], 1);
  assert.equal(gpu.image, 'bnn-cluster:latest-cuda');
  assert.equal(coordinator('overlays/gpu').image, 'bnn-cluster:latest', 'only the workers take the CUDA image');
  assert.ok(!JSON.stringify(out['overlays/cpu']).includes('nvidia.com/gpu'), 'the cpu overlay asks for no GPU');
  const cpu = worker('overlays/cpu');
  assert.equal(cpu.image, 'bnn-cluster:latest');
  assert.equal(flagValue(cpu.args ?? [], '--threads'), String(cpu.resources?.limits?.cpu), 'engine threads = the CPU limit');
  assert.deepEqual(
    Object.entries(out).flatMap(([name, docs]) => docs.filter((d) => d.object.kind === 'ServiceMonitor').map(() => name)),
    ['overlays/cpu-prometheus'],
  );
});

/** The nats StatefulSet's nats.conf with its store_dir (on the data volume) moved to `dir`, checked against the pod spec. */
function natsConfFor(sts: K8sObject, c: Container, storeDir: string): string {
  const conf = readFileSync(path.join(K8S_DIR, 'base', 'nats.conf'), 'utf8');
  const configMount = c.volumeMounts?.find((m) => m.name === 'config')?.mountPath;
  assert.deepEqual(c.args, ['--config', `${configMount}/nats.conf`]);
  const stores = [...conf.matchAll(/^\s*store_dir:\s*(\S+)\s*$/gm)];
  assert.equal(stores.length, 1, 'one jetstream store_dir');
  const dataMount = c.volumeMounts?.find((m) => m.name === 'data')?.mountPath ?? '';
  assert.ok(stores[0]![1]!.startsWith(`${dataMount}/`), `store_dir ${stores[0]![1]} is on the data volume (${dataMount})`);
  // routes: each pod by its name under the headless Service, on the cluster port
  const spec = sts.spec as { replicas: number; serviceName: string };
  const routes = [...conf.matchAll(/nats:\/\/([\w.-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
  const expected = Array.from(
    { length: spec.replicas },
    (_, i) => `${sts.metadata.name}-${i}.${spec.serviceName}:${probePort(c, 'cluster')}`,
  );
  assert.deepEqual(routes, expected);
  assert.equal(Number(/^port:\s*(\d+)/m.exec(conf)?.[1]), probePort(c, 'client'));
  assert.equal(Number(/^http_port:\s*(\d+)/m.exec(conf)?.[1]), probePort(c, 'monitor'));
  return conf.replace(stores[0]![0], `  store_dir: ${JSON.stringify(storeDir)}`);
}

/** Starts the NATS StatefulSet's replicas from nats.conf on loopback, each probe answering 200; returns node 0's client port. */
async function startNatsFromManifests(t: { after(fn: () => unknown): void }, docs: readonly ManifestDoc[]): Promise<number> {
  const sts = byName(docs, 'StatefulSet', 'nats');
  const headless = byName(docs, 'Service', (sts.spec as { serviceName: string }).serviceName).spec as Record<string, unknown>;
  assert.equal(headless.clusterIP, 'None');
  assert.equal(headless.publishNotReadyAddresses, true, 'routes must resolve before the pods are ready');
  const c = containerOf(sts, 'nats');
  const n = (sts.spec as { replicas: number }).replicas;
  const dir = await tmpDir({ t });
  const ports = await freePorts(3 * n);
  const node = (i: number) => ({ client: ports[3 * i]!, monitor: ports[3 * i + 1]!, cluster: ports[3 * i + 2]! });
  for (let i = 0; i < n; i++) {
    const conf = dir.join(`nats-${i}.conf`);
    writeFileSync(conf, natsConfFor(sts, c, dir.join(`data-${i}`, 'jetstream')));
    const routes = Array.from({ length: n }, (_, j) => node(j).cluster).filter((_, j) => j !== i);
    startNatsFromConf(t, conf, { ...node(i), routes }, envOf(c, `nats-${i}`));
  }
  const probes = probesOf(c);
  assert.deepEqual(probes.map(([k]) => k).sort(), ['livenessProbe', 'readinessProbe', 'startupProbe']);
  for (let i = 0; i < n; i++)
    for (const [kind, probe] of probes) {
      assert.equal(probePort(c, probe.httpGet?.port ?? -1), probePort(c, 'monitor'), `${kind} on the monitor port`);
      const url = `http://127.0.0.1:${node(i).monitor}${probe.httpGet?.path}`;
      let last = '';
      await until(
        `nats-${i} ${kind} ${probe.httpGet?.path} → 200`,
        30_000,
        async () => {
          const res = await fetch(url);
          last = `${res.status} ${await res.text()}`;
          return res.status === 200 ? true : undefined;
        },
        () => `(last: ${last})`,
      );
    }
  const secret = envFileKeys(SECRETS_EXAMPLE);
  assert.equal(await natsLogin(node(0).client, secret.get('nats-user')!, secret.get('nats-password')!), 'PONG');
  assert.match(await natsLogin(node(0).client, secret.get('nats-user')!, 'wrong'), /-ERR 'Authorization Violation'/);
  return node(0).client;
}

test("deploy/k8s - probes answer: nats.conf's 3 JetStream nodes (Secret's login) and bnn coordinator run with the manifest's flags and env", async (t) => {
  const docs = committedDocs(trees());
  const natsPort = await startNatsFromManifests(t, docs);

  const c = containerOf(byName(docs, 'StatefulSet', 'bnn-coordinator'), 'coordinator');
  const args = [...(c.args ?? [])];
  // the manifest binds every interface (the kubelet probes the pod's address); here: loopback, free ports
  assert.equal(flagValue(args, '--host'), '0.0.0.0');
  assert.equal(flagValue(args, '--http-host'), '0.0.0.0');
  const dir = await tmpDir({ t });
  const local: Record<string, string> = {
    '--host': '127.0.0.1',
    '--http-host': '127.0.0.1',
    '--port': '0',
    '--http-port': '0',
    '--store': dir.join('bnn.db'),
    '--nats': `nats://127.0.0.1:${natsPort}`,
  };
  for (const [flag, value] of Object.entries(local)) {
    assert.ok(args.includes(flag), `the coordinator's args have no ${flag}`);
    args[args.indexOf(flag) + 1] = value;
  }
  const coord = spawnCli(args, { cwd: dir.path, env: envOf(c, 'bnn-coordinator-0'), t });
  const [, grpcPort] = await coord.waitForLine(/coordinator listening on 127\.0\.0\.1:(\d+)/, 30_000);
  const [, httpBase] = await coord.waitForLine(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/, 10_000);
  const bound: Record<string, string> = { '--port': `127.0.0.1:${grpcPort}`, '--http-port': (httpBase as string).replace(/\/$/, '') };

  const probes = probesOf(c);
  assert.deepEqual(probes.map(([k]) => k).sort(), ['livenessProbe', 'readinessProbe', 'startupProbe']);
  for (const [kind, probe] of probes) {
    const containerPort = probePort(c, probe.httpGet?.port ?? probe.grpc?.port ?? -1);
    const flag = ['--port', '--http-port'].find((f) => flagValue(c.args ?? [], f) === String(containerPort));
    assert.ok(flag, `${kind}: port ${containerPort} is neither --port nor --http-port of the coordinator`);
    let last = '';
    if (probe.grpc) {
      assert.equal(flag, '--port', `${kind}: a gRPC probe on the HTTP port`);
      await until(
        `${kind} SERVING`,
        20_000,
        async () => {
          last = await grpcHealth(bound[flag]!, probe.grpc?.service ?? '');
          return last === 'SERVING' ? true : undefined;
        },
        () => last,
      );
    } else {
      assert.equal(flag, '--http-port', `${kind}: an HTTP probe on the gRPC port`);
      // /readyz waits for the coordinator's own NATS connection (the checkpoint object store's)
      await until(
        `${kind} ${probe.httpGet?.path} → 200`,
        20_000,
        async () => {
          const res = await fetch(`${bound[flag]}${probe.httpGet?.path}`);
          last = `${res.status} ${await res.text()}`;
          return res.status === 200 ? true : undefined;
        },
        () => `(last: ${last})`,
      );
    }
  }
  const ready = (await (await fetch(`${bound['--http-port']}/readyz`)).json()) as { checks: { nats: string } };
  assert.equal(ready.checks.nats, 'connected', 'the coordinator logs in to NATS with the Secret its env names');
  coord.child.kill('SIGTERM');
  assert.equal((await coord.exited).code, 0);
});
