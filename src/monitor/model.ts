import type { ClusterEvent } from '../rpc/index.js';
import type { GpuTelemetry, HostTelemetry } from '../telemetry/types.js';

/**
 * What `bnn monitor` shows, folded from the coordinator's WatchCluster events. Snapshots
 * (`snapshot` events, sent when the watch asks for them) replace the picture; the events in
 * between (`worker`, `progress`, `run`, `generation`) update it until the next one.
 */

// A host's live figures as workers report them; every field optional.
export type { GpuTelemetry, HostTelemetry };

export interface MonitorWorker {
  id: string;
  hostname: string;
  /** alive, suspect or dead (the coordinator's view). */
  state: string;
  runId: string | null;
  rank: number | null;
  step: number | null;
  samplesPerS: number | null;
  telemetry: HostTelemetry;
  /** Heartbeat age when `ageAt` was the time: age now = heartbeatAgeS + (now − ageAt). */
  heartbeatAgeS: number | null;
  /** Coordinator time (ms since epoch) the age was measured at. */
  ageAtMs: number | null;
}

export interface MonitorRun {
  id: string;
  name: string;
  status: string;
  generation: number;
  worldSize: number;
  epochs: number | null;
  epochsDone: number;
  /** A queued run: why it waits (`waiting for 4 workers, 2 idle`); null otherwise. */
  waiting: string | null;
}

export interface MonitorState {
  workers: Map<string, MonitorWorker>;
  runs: Map<string, MonitorRun>;
  /** True once a snapshot arrived: before that the worker list may be incomplete. */
  synced: boolean;
  /** Coordinator time of the newest event, ms since epoch. */
  lastEventMs: number | null;
}

export function emptyMonitorState(): MonitorState {
  return { workers: new Map(), runs: new Map(), synced: false, lastEventMs: null };
}

type Json = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function telemetryOf(v: unknown): HostTelemetry {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  const t = v as Json;
  const out: HostTelemetry = {};
  const cpuUtil = num(t.cpuUtil);
  const cpuTempC = num(t.cpuTempC);
  const cpuPowerW = num(t.cpuPowerW);
  if (cpuUtil !== null) out.cpuUtil = cpuUtil;
  if (cpuTempC !== null) out.cpuTempC = cpuTempC;
  if (cpuPowerW !== null) out.cpuPowerW = cpuPowerW;
  if (Array.isArray(t.gpus)) {
    out.gpus = t.gpus.flatMap((g: unknown) => {
      if (g === null || typeof g !== 'object') return [];
      const o = g as Json;
      const gpu: GpuTelemetry = { index: num(o.index) ?? 0 };
      const util = num(o.util);
      const tempC = num(o.tempC);
      const powerW = num(o.powerW);
      if (util !== null) gpu.util = util;
      if (tempC !== null) gpu.tempC = tempC;
      if (powerW !== null) gpu.powerW = powerW;
      return [gpu];
    });
  }
  return out;
}

function worker(state: MonitorState, id: string): MonitorWorker {
  let w = state.workers.get(id);
  if (!w) {
    w = {
      id,
      hostname: '',
      state: 'alive',
      runId: null,
      rank: null,
      step: null,
      samplesPerS: null,
      telemetry: {},
      heartbeatAgeS: null,
      ageAtMs: null,
    };
    state.workers.set(id, w);
  }
  return w;
}

/** Applies one event to the state (unknown kinds and unreadable details are ignored: a monitor never fails on them). */
export function applyEvent(state: MonitorState, ev: ClusterEvent): MonitorState {
  let detail: Json;
  try {
    const parsed: unknown = JSON.parse(ev.detail_json || '{}');
    detail = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : {};
  } catch {
    return state;
  }
  const atMs = Date.parse(ev.at);
  if (Number.isFinite(atMs)) state.lastEventMs = atMs;
  switch (ev.kind) {
    case 'snapshot':
      applySnapshot(state, detail, Number.isFinite(atMs) ? atMs : null);
      break;
    case 'worker': {
      const id = str(detail.workerId);
      if (id === null) break;
      const w = worker(state, id);
      const s = str(detail.state);
      if (s !== null) w.state = s;
      const host = str(detail.hostname);
      if (host !== null) w.hostname = host;
      if (s === 'alive' && Number.isFinite(atMs)) {
        w.heartbeatAgeS = 0;
        w.ageAtMs = atMs;
      }
      break;
    }
    case 'progress': {
      const id = str(detail.workerId);
      if (id === null) break;
      const w = worker(state, id);
      w.runId = ev.run_id || w.runId;
      w.rank = num(detail.rank) ?? w.rank;
      w.step = num(detail.step) ?? w.step;
      w.samplesPerS = num(detail.samplesPerS) ?? w.samplesPerS;
      if (detail.telemetry !== undefined) w.telemetry = telemetryOf(detail.telemetry);
      break;
    }
    case 'run': {
      const status = str(detail.status);
      if (status === null || ev.run_id === '') break;
      const run = state.runs.get(ev.run_id) ?? {
        id: ev.run_id,
        name: '',
        status,
        generation: 0,
        worldSize: num(detail.workers) ?? 0,
        epochs: null,
        epochsDone: 0,
        waiting: null,
      };
      run.status = status;
      run.waiting = status === 'PENDING' ? (str(detail.waiting) ?? run.waiting) : null;
      state.runs.set(ev.run_id, run);
      if (status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED') {
        for (const w of state.workers.values()) {
          if (w.runId === ev.run_id) Object.assign(w, { runId: null, rank: null, step: null, samplesPerS: null });
        }
      }
      break;
    }
    case 'epoch': {
      const run = state.runs.get(ev.run_id);
      const epoch = num(detail.epoch);
      if (run && epoch !== null) run.epochsDone = Math.max(run.epochsDone, epoch);
      break;
    }
    default:
      break;
  }
  return state;
}

function applySnapshot(state: MonitorState, detail: Json, atMs: number | null): void {
  const workers = Array.isArray(detail.workers) ? detail.workers : [];
  const runs = Array.isArray(detail.runs) ? detail.runs : [];
  state.workers = new Map();
  for (const raw of workers) {
    if (raw === null || typeof raw !== 'object') continue;
    const o = raw as Json;
    const id = str(o.id);
    if (id === null) continue;
    state.workers.set(id, {
      id,
      hostname: str(o.hostname) ?? '',
      state: str(o.state) ?? 'alive',
      runId: str(o.runId),
      rank: num(o.rank) !== null && num(o.rank)! >= 0 ? num(o.rank) : null,
      step: num(o.step),
      samplesPerS: num(o.samplesPerS),
      telemetry: telemetryOf(o.telemetry),
      heartbeatAgeS: num(o.heartbeatAgeS),
      ageAtMs: atMs,
    });
  }
  const previous = state.runs;
  state.runs = new Map();
  for (const raw of runs) {
    if (raw === null || typeof raw !== 'object') continue;
    const o = raw as Json;
    const id = str(o.id);
    if (id === null) continue;
    state.runs.set(id, {
      id,
      name: str(o.name) ?? '',
      status: str(o.status) ?? '',
      generation: num(o.generation) ?? 0,
      worldSize: num(o.worldSize) ?? 0,
      epochs: num(o.epochs),
      epochsDone: previous.get(id)?.epochsDone ?? 0,
      waiting: str(o.waiting),
    });
  }
  state.synced = true;
}

/** Heartbeat age in seconds at `nowMs`; null when unknown. */
export function heartbeatAge(w: MonitorWorker, nowMs: number): number | null {
  if (w.heartbeatAgeS === null || w.ageAtMs === null) return null;
  return w.heartbeatAgeS + Math.max(0, nowMs - w.ageAtMs) / 1000;
}

/** A plain-data view for `--json`: workers by id order, runs by id, ages as of `nowMs`. */
export function snapshotJson(state: MonitorState, nowMs: number): { at: string; workers: Json[]; runs: MonitorRun[] } {
  return {
    at: new Date(nowMs).toISOString(),
    workers: [...state.workers.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map(({ ageAtMs: _at, heartbeatAgeS: _age, ...w }) => ({
        ...w,
        heartbeatAgeS: heartbeatAge({ ...w, ageAtMs: _at, heartbeatAgeS: _age }, nowMs),
      })),
    runs: [...state.runs.values()].sort((a, b) => a.id.localeCompare(b.id)),
  };
}
