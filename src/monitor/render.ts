import { count, renderTable } from '../query/format.js';
import { heartbeatAge, type HostTelemetry, type MonitorState } from './model.js';

const pct = (x: number | undefined) => (x === undefined ? '-' : `${Math.round(x * 100)}%`);
const maxOf = (xs: (number | undefined)[]) => {
  const present = xs.filter((x): x is number => x !== undefined);
  return present.length === 0 ? undefined : Math.max(...present);
};
const sumOf = (xs: (number | undefined)[]) => {
  const present = xs.filter((x): x is number => x !== undefined);
  return present.length === 0 ? undefined : present.reduce((a, b) => a + b, 0);
};

/** GPU utilisation over the host's GPUs (the busiest), or `-`. */
export function gpuUtil(t: HostTelemetry): string {
  return pct(maxOf((t.gpus ?? []).map((g) => g.util)));
}

/** The hottest of CPU package and GPUs, in °C. */
export function temperature(t: HostTelemetry): string {
  const hottest = maxOf([t.cpuTempC, ...(t.gpus ?? []).map((g) => g.tempC)]);
  return hottest === undefined ? '-' : `${Math.round(hottest)}°C`;
}

/** CPU package plus GPU board power, in W. */
export function power(t: HostTelemetry): string {
  const total = sumOf([t.cpuPowerW, ...(t.gpus ?? []).map((g) => g.powerW)]);
  return total === undefined ? '-' : `${total.toFixed(0)} W`;
}

/** The worker table, one row per worker (by id), then one line per active run. */
export function renderMonitor(state: MonitorState, nowMs: number, header: string): string {
  const workers = [...state.workers.values()].sort((a, b) => a.id.localeCompare(b.id));
  const lines = [header];
  if (!state.synced) lines.push('waiting for the coordinator’s first snapshot…');
  if (workers.length === 0) lines.push('no workers registered');
  else {
    lines.push(
      renderTable(
        [
          { header: 'WORKER' },
          { header: 'HOST' },
          { header: 'STATE' },
          { header: 'RANK', align: 'right' },
          { header: 'RUN' },
          { header: 'STEP', align: 'right' },
          { header: 'SAMPLES/S', align: 'right' },
          { header: 'CPU', align: 'right' },
          { header: 'GPU', align: 'right' },
          { header: 'TEMP', align: 'right' },
          { header: 'POWER', align: 'right' },
          { header: 'HEARTBEAT', align: 'right' },
        ],
        workers.map((w) => {
          const age = heartbeatAge(w, nowMs);
          return [
            w.id,
            w.hostname,
            w.state,
            w.rank === null ? '-' : String(w.rank),
            w.runId ?? '-',
            w.step === null ? '-' : count(w.step),
            w.samplesPerS === null ? '-' : count(w.samplesPerS),
            pct(w.telemetry.cpuUtil),
            gpuUtil(w.telemetry),
            temperature(w.telemetry),
            power(w.telemetry),
            age === null ? '-' : `${age.toFixed(1)}s ago`,
          ];
        }),
      ).trimEnd(),
    );
  }
  const runs = [...state.runs.values()].sort((a, b) => a.id.localeCompare(b.id));
  for (const r of runs) {
    if (r.status === 'PENDING' && r.waiting) {
      lines.push(`run ${r.id} ${r.name} PENDING: ${r.waiting}`);
      continue;
    }
    lines.push(
      `run ${r.id} ${r.name} ${r.status}: generation ${r.generation}, ${r.worldSize} worker(s)${r.epochs === null ? '' : r.epochsDone > 0 ? `, epoch ${r.epochsDone}/${r.epochs}` : `, ${r.epochs} epochs`}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
