import type { ClusterEvent, RpcStream } from '../rpc/index.js';
import { MonitorError } from './errors.js';
import { applyEvent, emptyMonitorState, snapshotJson } from './model.js';
import { renderMonitor } from './render.js';

export interface MonitorOptions {
  /** `host:port`, for messages. */
  coordinator: string;
  /** Only this run's events ('' for all). */
  runId: string;
  /** How often the coordinator sends a snapshot (and the table is redrawn at least). */
  refreshMs: number;
  /** Print one snapshot and return (table, or JSON with `json`). */
  once: boolean;
  json: boolean;
  /** Give up when the first snapshot has not come within this. */
  firstSnapshotTimeoutMs: number;
}

export function defaultMonitorOptions(): Omit<MonitorOptions, 'coordinator'> {
  return { runId: '', refreshMs: 1000, once: false, json: false, firstSnapshotTimeoutMs: 10_000 };
}

/** The terminal the live view draws on and reads keys from. */
export interface MonitorTerminal {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; rows?: number };
  /** Keys are read (in raw mode) only when this is a TTY. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  /** Where Ctrl-C arrives when stdin is not in raw mode; default `process`. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

const ESC = '\x1b[';
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
const HOME = `${ESC}H`;
const CLEAR_LINE_END = `${ESC}K`;
const CLEAR_BELOW = `${ESC}J`;

/**
 * Watches the cluster and shows its workers. With `once`, waits for the coordinator's first
 * snapshot, prints it and returns. Otherwise redraws in place (ANSI) on every change and
 * every `refreshMs`, until q or Ctrl-C; the terminal is restored however it ends.
 * Returns the exit code; MonitorError when no snapshot comes or the coordinator ends the watch.
 */
export async function runMonitor(
  watch: (req: { run_id: string; snapshot_interval_ms: number }) => RpcStream<ClusterEvent>,
  options: MonitorOptions,
  term: MonitorTerminal,
  now: () => number = Date.now,
): Promise<number> {
  const stream = watch({ run_id: options.runId, snapshot_interval_ms: options.refreshMs });
  const state = emptyMonitorState();
  const header = () =>
    `bnn monitor ${options.coordinator}${options.runId === '' ? '' : ` run ${options.runId}`}  ${new Date(now()).toISOString().slice(11, 19)} UTC${options.once ? '' : '  (q to quit)'}`;
  let timedOut = false;
  const firstSnapshot = setTimeout(() => {
    timedOut = true;
    stream.cancel();
  }, options.firstSnapshotTimeoutMs);

  if (options.once || options.json) {
    try {
      for await (const ev of stream) {
        applyEvent(state, ev);
        if (state.synced) break;
      }
    } finally {
      clearTimeout(firstSnapshot);
      stream.cancel();
    }
    if (!state.synced) throw noSnapshot(options, timedOut);
    term.stdout.write(options.json ? `${JSON.stringify(snapshotJson(state, now()), null, 2)}\n` : renderMonitor(state, now(), header()));
    return 0;
  }

  const tty = term.stdout.isTTY === true;
  let quit = false;
  const stop = () => {
    quit = true;
    stream.cancel();
  };
  const draw = () => {
    const text = renderMonitor(state, now(), header());
    if (tty) term.stdout.write(`${HOME}${text.split('\n').join(`${CLEAR_LINE_END}\n`)}${CLEAR_BELOW}`);
    else term.stdout.write(`${text}\n`);
  };
  const onKey = (data: Buffer | string) => {
    const s = data.toString();
    if (s.includes('q') || s.includes('Q') || s.includes('\u0003')) stop();
  };
  const signals = term.signals ?? process;
  const stdin = term.stdin;
  const raw = stdin?.isTTY === true && typeof stdin.setRawMode === 'function';
  if (raw) {
    stdin.setRawMode!(true);
    stdin.on('data', onKey);
    stdin.resume();
  }
  signals.on('SIGINT', stop);
  signals.on('SIGTERM', stop);
  if (tty) term.stdout.write(`${HIDE_CURSOR}${ESC}2J`);
  // Between snapshots the ages still advance: redraw on a timer too (TTY only; a log gets one table per snapshot).
  const ticker = tty ? setInterval(() => state.synced && draw(), Math.max(250, options.refreshMs)) : undefined;
  let lastDraw = 0;
  try {
    for await (const ev of stream) {
      applyEvent(state, ev);
      if (!state.synced) continue;
      clearTimeout(firstSnapshot);
      // On a TTY, redraw at most 10 times a second; in a log, once per snapshot.
      if (tty ? now() - lastDraw >= 100 : ev.kind === 'snapshot') {
        draw();
        lastDraw = now();
      }
    }
  } finally {
    clearTimeout(firstSnapshot);
    if (ticker) clearInterval(ticker);
    signals.off('SIGINT', stop);
    signals.off('SIGTERM', stop);
    if (raw) {
      stdin.off('data', onKey);
      stdin.setRawMode!(false);
      stdin.pause();
    }
    if (tty) term.stdout.write(SHOW_CURSOR);
    stream.cancel();
  }
  if (quit) return 0;
  if (!state.synced) throw noSnapshot(options, timedOut);
  throw new MonitorError(`coordinator ${options.coordinator} ended the watch (it is shutting down?)`, options.coordinator);
}

function noSnapshot(options: MonitorOptions, timedOut: boolean): MonitorError {
  return new MonitorError(
    timedOut
      ? `coordinator ${options.coordinator} sent no cluster snapshot within ${options.firstSnapshotTimeoutMs} ms (is it a bnn-cluster coordinator of this version? WatchCluster snapshots are needed)`
      : `coordinator ${options.coordinator} ended the watch before its first snapshot`,
    options.coordinator,
  );
}
