// SIGINT and SIGTERM mean the same thing to every long-running bnn command: Ctrl-C at a
// terminal, and the stop of a scheduler (Kubernetes, Slurm, docker compose) are handled by one
// code path. The first one asks for a graceful stop; a later one for leaving at once.

/** The signals that ask a bnn process to stop. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The exit code of a command stopped by `signal`, by the shell's convention 128 + its number: SIGINT 130, SIGTERM 143. */
export function signalExitCode(signal: StopSignal): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** What a command does on a stop signal. */
export interface StopSignalHandlers {
  /** The first SIGINT or SIGTERM: stop gracefully (at the next step boundary, cancel the run, ...). */
  first(signal: StopSignal): void;
  /** Each later one, of either kind: leave without waiting. */
  again(signal: StopSignal): void;
}

/** Where the signals come from: the process, or an emitter a test drives. */
export interface SignalSource {
  on(signal: StopSignal, listener: (signal: StopSignal) => void): unknown;
  off(signal: StopSignal, listener: (signal: StopSignal) => void): unknown;
}

/**
 * Handles SIGINT and SIGTERM alike until the returned remover is called: `first` on the first
 * one, `again` on each later one. While installed, neither signal has its default action
 * (killing the process), so a command must leave on `again` (or after `first`) by itself.
 */
export function onStopSignals(handlers: StopSignalHandlers, source: SignalSource = process): () => void {
  let seen = 0;
  const listener = (signal: StopSignal) => {
    seen++;
    if (seen === 1) handlers.first(signal);
    else handlers.again(signal);
  };
  for (const s of STOP_SIGNALS) source.on(s, listener);
  return () => {
    for (const s of STOP_SIGNALS) source.off(s, listener);
  };
}
