import cliProgress from 'cli-progress';

/**
 * Per-epoch progress on stderr (stdout is for results and JSON):
 *   epoch 3/15 |█████░░░| 120/235 loss 0.412 acc 85.1% 6,120 samples/s ETA 4s
 * - `tty`: one bar redrawn in place (cli-progress);
 * - `plain` (stderr is a file or pipe): a line every ~10% of the epoch or 5 s;
 * - `silent`: nothing (under --json or --quiet).
 */
export type ProgressMode = 'tty' | 'plain' | 'silent';

export interface EpochStats {
  /** Running mean training loss of the epoch so far. */
  loss?: number;
  /** Running training accuracy, as a fraction in [0, 1]. */
  accuracy?: number;
  samplesPerS?: number;
}

export interface EpochProgressOptions {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Steps (batches) in this epoch. */
  total: number;
  /** False: print nothing (--json, --quiet). Default true. */
  enabled?: boolean;
  /** Overrides the choice made from `enabled` and whether the stream is a TTY. */
  mode?: ProgressMode;
  /** Defaults to process.stderr. */
  stream?: NodeJS.WritableStream;
  /** Plain mode prints at least this often while steps advance. */
  plainIntervalMs?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
  /** Bar width in characters (tty mode). */
  barWidth?: number;
}

export interface EpochProgress {
  /** `step` is the number of steps done (1..totalSteps). */
  update(step: number, stats?: EpochStats): void;
  /** Draws the final state and releases the terminal; idempotent. */
  stop(stats?: EpochStats): void;
}

export function progressMode(opts: { json?: boolean; quiet?: boolean; stream?: NodeJS.WritableStream }): ProgressMode {
  if (opts.json || opts.quiet) return 'silent';
  const stream = (opts.stream ?? process.stderr) as { isTTY?: boolean };
  return stream.isTTY === true ? 'tty' : 'plain';
}

export interface EpochLineState {
  epoch: number;
  epochs: number;
  step: number;
  totalSteps: number;
  stats: EpochStats;
  /** Seconds left; undefined before the first step. */
  etaS: number | undefined;
  /** 0 for no bar (plain lines). */
  barWidth: number;
}

export function formatEpochLine(s: EpochLineState): string {
  const parts = [`epoch ${s.epoch}/${s.epochs}`];
  const fraction = s.totalSteps > 0 ? Math.min(1, s.step / s.totalSteps) : 1;
  if (s.barWidth > 0) {
    const done = Math.round(fraction * s.barWidth);
    parts.push(`|${'█'.repeat(done)}${'░'.repeat(s.barWidth - done)}|`);
  }
  parts.push(`${s.step}/${s.totalSteps}`);
  if (s.barWidth === 0) parts.push(`${Math.floor(fraction * 100)}%`);
  if (s.stats.loss !== undefined) parts.push(`loss ${s.stats.loss.toFixed(3)}`);
  if (s.stats.accuracy !== undefined) parts.push(`acc ${(s.stats.accuracy * 100).toFixed(1)}%`);
  if (s.stats.samplesPerS !== undefined) {
    parts.push(`${Math.round(s.stats.samplesPerS).toLocaleString('en-US')} samples/s`);
  }
  parts.push(`ETA ${s.etaS === undefined ? '--' : formatDuration(s.etaS)}`);
  return parts.join(' ');
}

/** 4s, 1m05s, 2h03m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createEpochProgress(options: EpochProgressOptions): EpochProgress {
  const stream = options.stream ?? process.stderr;
  const mode = options.mode ?? progressMode({ quiet: options.enabled === false, stream });
  if (mode === 'silent') return { update() {}, stop() {} };
  const now = options.now ?? Date.now;
  const start = now();
  const state: ProgressState = {
    step: 0,
    stats: {},
    set(step, stats) {
      this.step = step;
      if (stats) this.stats = { ...this.stats, ...stats };
    },
    line(barWidth) {
      const elapsedS = (now() - start) / 1000;
      const left = Math.max(0, options.total - this.step);
      return formatEpochLine({
        epoch: options.epoch,
        epochs: options.epochs,
        step: this.step,
        totalSteps: options.total,
        stats: this.stats,
        etaS: this.step > 0 ? (elapsedS / this.step) * left : undefined,
        barWidth,
      });
    },
  };
  return mode === 'tty' ? ttyProgress(options, stream, state) : plainProgress(options, stream, now, state);
}

interface ProgressState {
  step: number;
  stats: EpochStats;
  set(step: number, stats: EpochStats | undefined): void;
  line(barWidth: number): string;
}

function ttyProgress(options: EpochProgressOptions, stream: NodeJS.WritableStream, state: ProgressState): EpochProgress {
  const barWidth = options.barWidth ?? 24;
  const bar = new cliProgress.SingleBar({
    stream,
    format: () => state.line(barWidth),
    hideCursor: false,
    clearOnComplete: false,
    stopOnComplete: false,
    linewrap: false,
    fps: 10,
  });
  bar.start(options.total, 0);
  let stopped = false;
  return {
    update(step, stats) {
      if (stopped) return;
      state.set(step, stats);
      bar.update(step);
    },
    stop(stats) {
      if (stopped) return;
      stopped = true;
      if (stats) state.set(options.total, stats);
      bar.update(state.step);
      bar.stop();
    },
  };
}

function plainProgress(
  options: EpochProgressOptions,
  stream: NodeJS.WritableStream,
  now: () => number,
  state: ProgressState,
): EpochProgress {
  const interval = options.plainIntervalMs ?? 5000;
  const tenth = Math.max(1, options.total / 10);
  let nextStep = tenth;
  let lastAt = now();
  let lastPrinted = -1;
  let stopped = false;
  const print = (): void => {
    stream.write(`${state.line(0)}\n`);
    lastPrinted = state.step;
    lastAt = now();
    while (nextStep <= state.step) nextStep += tenth;
  };
  return {
    update(step, stats) {
      if (stopped) return;
      state.set(step, stats);
      if (step >= nextStep || now() - lastAt >= interval) print();
    },
    stop(stats) {
      if (stopped) return;
      stopped = true;
      if (stats) state.set(options.total, stats);
      if (lastPrinted !== state.step) print();
    },
  };
}
