// The coordinator's Prometheus exposition (prom-client, its own registry): per-worker gauges read
// from the coordinator's state at scrape time; step times and all-reduce traffic counted from the
// `progress` events of the broadcast, a run's series dropped after it ended and a worker's after it
// left or died (so a long-lived coordinator's exposition stays bounded); runs by status from the
// experiment database.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { countRunsByStatus, RUN_STATUSES, type StoreDb } from '../src/store/index.js';
import type { ClusterEvent } from '../src/rpc/index.js';
import type { AsyncQueue } from '../src/util/queue.js';
import type { GpuTelemetry } from '../src/telemetry/types.js';
import type { Coordinator, WorkerSnapshot, WorkerState } from './coordinator.js';

export interface CoordinatorMetricsDeps {
  coordinator: Coordinator;
  db: StoreDb;
  /** Node process metrics of the coordinator (`bnn_coordinator_process_*`, `bnn_coordinator_nodejs_*`). */
  processMetrics?: boolean;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  /** The text exposition format, as `/metrics` serves it. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Stops following the event broadcast. */
  close(): void;
}

/** Step wall times from ~1 ms (tiny models) to ~2 min (large ones on CPU). */
export const STEP_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
const WORKER_STATES: readonly WorkerState[] = ['alive', 'suspect'];
const WORKER_LABELS = ['worker', 'hostname'] as const;

const finite = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/** The parts of a worker's HostTelemetry that are numbers; anything else is unknown. */
function gpusOf(telemetry: Record<string, unknown>): GpuTelemetry[] {
  const gpus = telemetry.gpus;
  if (!Array.isArray(gpus)) return [];
  return gpus
    .filter((g): g is Record<string, unknown> => g !== null && typeof g === 'object')
    .map((g, i) => ({
      index: finite(g.index) ?? i,
      util: finite(g.util),
      tempC: finite(g.tempC),
      powerW: finite(g.powerW),
    }));
}

/** Where every gauge reads its workers and runs from, and the registry it joins. */
interface GaugeScope {
  coordinator: Coordinator;
  registers: Registry[];
}

/** One per-worker gauge: `value` undefined or null leaves the worker out (unknown). */
interface WorkerGaugeSpec {
  name: string;
  help: string;
  value: (w: WorkerSnapshot) => number | null | undefined;
}

/** One per-GPU gauge: `pick` undefined leaves that GPU out (unknown). */
interface GpuGaugeSpec {
  name: string;
  help: string;
  pick: (g: GpuTelemetry) => number | undefined;
}

const WORKER_GAUGES: readonly WorkerGaugeSpec[] = [
  { name: 'bnn_worker_heartbeat_age_seconds', help: "Seconds since the worker's last heartbeat.", value: (w) => w.heartbeatAgeS },
  { name: 'bnn_worker_step', help: 'Optimizer step the worker last reported in its current run.', value: (w) => w.step },
  {
    name: 'bnn_worker_samples_per_second',
    help: 'Training samples per second the worker computed (its shard) over its last progress report.',
    value: (w) => w.samplesPerS,
  },
  {
    name: 'bnn_worker_cpu_utilization_ratio',
    help: "Busy fraction of all CPUs of the worker's host (0-1), where known.",
    value: (w) => finite(w.telemetry.cpuUtil),
  },
  {
    name: 'bnn_worker_cpu_temperature_celsius',
    help: "CPU package temperature of the worker's host, where known.",
    value: (w) => finite(w.telemetry.cpuTempC),
  },
  {
    name: 'bnn_worker_cpu_power_watts',
    help: "CPU package power of the worker's host (RAPL), where known.",
    value: (w) => finite(w.telemetry.cpuPowerW),
  },
];

const GPU_GAUGES: readonly GpuGaugeSpec[] = [
  {
    name: 'bnn_worker_gpu_utilization_ratio',
    help: "GPU utilisation (0-1) on the worker's host, per GPU, where known.",
    pick: (g) => g.util,
  },
  { name: 'bnn_worker_gpu_temperature_celsius', help: "GPU temperature on the worker's host, per GPU, where known.", pick: (g) => g.tempC },
  { name: 'bnn_worker_gpu_power_watts', help: "GPU board power on the worker's host, per GPU, where known.", pick: (g) => g.powerW },
];

const workerLabels = (w: WorkerSnapshot) => ({ worker: w.id, hostname: w.hostname });

/** A registry of its own, with the coordinator's Node process metrics unless turned off. */
function coordinatorRegistry(processMetrics: boolean | undefined): Registry {
  const registry = new Registry();
  if (processMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'bnn_coordinator_' });
    // prom-client names these gauges `_total`, which promtool's lint refuses (a suffix for counters only).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(`bnn_coordinator_${name}`);
    }
  }
  return registry;
}

/** Workers by state, each worker's state, and its identity labels (`bnn_worker_info`). */
function registerMembershipGauges({ coordinator, registers }: GaugeScope): void {
  new Gauge({
    name: 'bnn_workers',
    help: 'Workers connected to the coordinator, by membership state.',
    labelNames: ['state'],
    registers,
    collect() {
      const snap = coordinator.snapshot().workers;
      for (const s of WORKER_STATES) this.set({ state: s }, snap.filter((w) => w.state === s).length);
    },
  });
  new Gauge({
    name: 'bnn_worker_state',
    help: 'Membership state of each worker: 1 for its current state, 0 for the others.',
    labelNames: [...WORKER_LABELS, 'state'],
    registers,
    collect() {
      this.reset();
      for (const w of coordinator.snapshot().workers)
        for (const s of WORKER_STATES) this.set({ ...workerLabels(w), state: s }, w.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'bnn_worker_info',
    help: 'Always 1; labels carry the worker\'s backend, threads, run and rank ("" when idle).',
    labelNames: [...WORKER_LABELS, 'backend', 'threads', 'run', 'rank'],
    registers,
    collect() {
      this.reset();
      for (const w of coordinator.snapshot().workers) {
        this.set(
          {
            ...workerLabels(w),
            backend: w.backend,
            threads: String(w.threads),
            run: w.runId ?? '',
            rank: w.rank === null ? '' : String(w.rank),
          },
          1,
        );
      }
    },
  });
}

function registerWorkerGauge({ coordinator, registers }: GaugeScope, { name, help, value }: WorkerGaugeSpec): void {
  new Gauge({
    name,
    help,
    labelNames: WORKER_LABELS,
    registers,
    collect() {
      this.reset();
      for (const w of coordinator.snapshot().workers) {
        const v = value(w);
        if (v !== null && v !== undefined) this.set(workerLabels(w), v);
      }
    },
  });
}

function registerGpuGauge({ coordinator, registers }: GaugeScope, { name, help, pick }: GpuGaugeSpec): void {
  new Gauge({
    name,
    help,
    labelNames: [...WORKER_LABELS, 'gpu'],
    registers,
    collect() {
      this.reset();
      for (const w of coordinator.snapshot().workers) {
        for (const g of gpusOf(w.telemetry)) {
          const v = pick(g);
          if (v !== undefined) this.set({ ...workerLabels(w), gpu: String(g.index) }, v);
        }
      }
    },
  });
}

/** Runs by status (from the database), and each active run's generation and world size. */
function registerRunGauges({ coordinator, registers }: GaugeScope, db: StoreDb): void {
  new Gauge({
    name: 'bnn_runs',
    help: 'Runs in the experiment database, by status.',
    labelNames: ['status'],
    registers,
    collect() {
      const counts = countRunsByStatus(db);
      for (const s of RUN_STATUSES) this.set({ status: s }, counts[s]);
    },
  });
  new Gauge({
    name: 'bnn_run_generation',
    help: 'Current generation of each active run (0 while pending).',
    labelNames: ['run'],
    registers,
    collect() {
      this.reset();
      for (const r of coordinator.snapshot().runs) this.set({ run: r.id }, r.generation);
    },
  });
  new Gauge({
    name: 'bnn_run_world_size',
    help: 'Workers each active run trains with.',
    labelNames: ['run'],
    registers,
    collect() {
      this.reset();
      for (const r of coordinator.snapshot().runs) this.set({ run: r.id }, r.worldSize);
    },
  });
}

/** The metrics counted from `progress` events, not read at scrape time. */
interface ProgressMetrics {
  stepSeconds: Histogram<'run'>;
  allreduceBytes: Counter<'run' | (typeof WORKER_LABELS)[number]>;
  allreduceSeconds: Counter<'run' | (typeof WORKER_LABELS)[number]>;
  messagesRejected: Counter<'run' | (typeof WORKER_LABELS)[number]>;
}

function registerProgressMetrics(registers: Registry[]): ProgressMetrics {
  const stepSeconds = new Histogram({
    name: 'bnn_step_duration_seconds',
    help: 'Wall time of one training step on one rank, all-reduce included.',
    labelNames: ['run'],
    buckets: STEP_SECONDS_BUCKETS,
    registers,
  });
  const allreduceBytes = new Counter({
    name: 'bnn_allreduce_bytes_total',
    help: 'Gradient all-reduce bytes a worker sent plus received.',
    labelNames: ['run', ...WORKER_LABELS],
    registers,
  });
  const allreduceSeconds = new Counter({
    name: 'bnn_allreduce_seconds_total',
    help: 'Seconds a worker spent in gradient all-reduce.',
    labelNames: ['run', ...WORKER_LABELS],
    registers,
  });
  const messagesRejected = new Counter({
    name: 'bnn_collective_messages_rejected_total',
    help: "Collective messages a worker dropped because their MAC failed (published by a process without the run's secret, replayed or altered).",
    labelNames: ['run', ...WORKER_LABELS],
    registers,
  });
  return { stepSeconds, allreduceBytes, allreduceSeconds, messagesRejected };
}

type SeriesLabels = { run: string; worker: string; hostname: string };

/** How long the series of a finished run or departed worker stay when nothing scrapes /metrics. */
export const RETIRED_SERIES_MAX_AGE_MS = 10 * 60_000;

/**
 * The labelled series of the progress metrics, by run and worker, so that a finished run's and a
 * departed worker's can go: they are retired when the run ends (COMPLETED, FAILED, CANCELLED) or
 * the worker leaves or is declared dead, stay for the next scrape (which shows their final
 * values), and are removed at the one after, or after RETIRED_SERIES_MAX_AGE_MS without scrapes.
 * A run that becomes active again (a resume) is no longer retired.
 */
class ProgressSeries {
  private readonly series = new Map<string, SeriesLabels>();
  private readonly stepRuns = new Set<string>();
  private readonly retired = new Map<string, { at: number; scrapesAtRetire: number; exposed: boolean }>();
  private scrapesStarted = 0;

  constructor(
    private readonly m: ProgressMetrics,
    private readonly hostnames: Map<string, string>,
  ) {}

  /** Notes the series `l` (now holding a value). */
  touch(l: SeriesLabels, stepped: boolean): void {
    this.series.set(JSON.stringify([l.run, l.worker, l.hostname]), l);
    if (stepped) this.stepRuns.add(l.run);
  }

  retire(kind: 'run' | 'worker', id: string, now: number): void {
    this.retired.set(`${kind}:${id}`, { at: now, scrapesAtRetire: this.scrapesStarted, exposed: false });
    this.sweep(now);
  }

  unretire(kind: 'run' | 'worker', id: string): void {
    this.retired.delete(`${kind}:${id}`);
  }

  /** Before a scrape: removes what an earlier scrape exposed (or what waited too long). Returns the end-of-scrape hook. */
  beforeScrape(now: number): () => void {
    this.sweep(now);
    const started = ++this.scrapesStarted;
    return () => {
      for (const r of this.retired.values()) if (r.scrapesAtRetire < started) r.exposed = true;
    };
  }

  private sweep(now: number): void {
    for (const [key, r] of this.retired) {
      if (!r.exposed && now - r.at < RETIRED_SERIES_MAX_AGE_MS) continue;
      this.retired.delete(key);
      const [kind, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
      if (kind === 'worker') this.hostnames.delete(id);
      if (kind === 'run' && this.stepRuns.delete(id)) this.m.stepSeconds.remove({ run: id });
      for (const [k, l] of this.series) {
        if ((kind === 'run' ? l.run : l.worker) !== id) continue;
        this.series.delete(k);
        this.m.allreduceBytes.remove(l);
        this.m.allreduceSeconds.remove(l);
        this.m.messagesRejected.remove(l);
      }
    }
  }
}

const TERMINAL_RUN_STATUSES = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** Retires and restores series as `run` and `worker` events say (see ProgressSeries). */
function followLifecycle(ev: ClusterEvent, d: Record<string, unknown>, series: ProgressSeries, now: number): void {
  if (ev.kind === 'run' && typeof d.status === 'string') {
    if (TERMINAL_RUN_STATUSES.has(d.status)) series.retire('run', ev.run_id, now);
    else series.unretire('run', ev.run_id);
  }
  if (ev.kind === 'worker' && typeof d.workerId === 'string' && (d.state === 'left' || d.state === 'dead'))
    series.retire('worker', d.workerId, now);
}

/**
 * Counts step times, all-reduce traffic and rejected messages from the broadcast's `progress` events, labelled with
 * the hostname its `worker` events (or the current snapshot) gave, and drops a finished run's and a departed
 * worker's series (ProgressSeries). Stop the returned queue to stop.
 */
function followProgress(coordinator: Coordinator, m: ProgressMetrics): { queue: AsyncQueue<ClusterEvent>; series: ProgressSeries } {
  const hostnames = new Map<string, string>();
  const series = new ProgressSeries(m, hostnames);
  const follow = (ev: ClusterEvent): void => {
    const d = JSON.parse(ev.detail_json) as Record<string, unknown>;
    if (ev.kind === 'worker' && typeof d.workerId === 'string' && typeof d.hostname === 'string') hostnames.set(d.workerId, d.hostname);
    followLifecycle(ev, d, series, Date.now());
    if (ev.kind !== 'progress' || typeof d.workerId !== 'string') return;
    const l = { run: ev.run_id, worker: d.workerId, hostname: hostnames.get(d.workerId) ?? '' };
    let stepped = false;
    if (Array.isArray(d.stepSeconds))
      for (const s of d.stepSeconds)
        if (finite(s) !== undefined && s >= 0) {
          m.stepSeconds.observe({ run: ev.run_id }, s);
          stepped = true;
        }
    const bytes = finite(d.allreduceBytes);
    const seconds = finite(d.allreduceSeconds);
    if (bytes !== undefined && bytes >= 0) m.allreduceBytes.inc(l, bytes);
    if (seconds !== undefined && seconds >= 0) m.allreduceSeconds.inc(l, seconds);
    const rejected = finite(d.rejectedMessages);
    if (rejected !== undefined && rejected > 0) m.messagesRejected.inc(l, rejected);
    series.touch(l, stepped);
  };
  for (const w of coordinator.snapshot().workers) hostnames.set(w.id, w.hostname);
  const queue: AsyncQueue<ClusterEvent> = coordinator.events.watch('');
  void (async () => {
    for await (const ev of queue) {
      try {
        follow(ev);
      } catch {
        /* one malformed event: skip it */
      }
    }
  })();
  return { queue, series };
}

export function createCoordinatorMetrics(deps: CoordinatorMetricsDeps): CoordinatorMetrics {
  const { coordinator, db } = deps;
  const registry = coordinatorRegistry(deps.processMetrics);
  const scope: GaugeScope = { coordinator, registers: [registry] };
  // Registration order is exposition order.
  registerMembershipGauges(scope);
  for (const spec of WORKER_GAUGES) registerWorkerGauge(scope, spec);
  for (const spec of GPU_GAUGES) registerGpuGauge(scope, spec);
  registerRunGauges(scope, db);
  const { queue, series } = followProgress(coordinator, registerProgressMetrics(scope.registers));

  return {
    registry,
    async render() {
      const exposed = series.beforeScrape(Date.now());
      const text = await registry.metrics();
      exposed();
      return text;
    },
    get contentType() {
      return registry.contentType;
    },
    close: () => queue.stop(),
  };
}
