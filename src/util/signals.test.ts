import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { onStopSignals, signalExitCode, type StopSignal } from './signals.js';

test('signals - SIGINT and SIGTERM alike: the first calls first, every later one again, of either kind; the remover removes both', () => {
  const source = new EventEmitter();
  const calls: string[] = [];
  const remove = onStopSignals({ first: (s) => calls.push(`first ${s}`), again: (s) => calls.push(`again ${s}`) }, source);
  for (const s of ['SIGTERM', 'SIGINT', 'SIGTERM'] as StopSignal[]) source.emit(s, s);
  assert.deepEqual(calls, ['first SIGTERM', 'again SIGINT', 'again SIGTERM']);
  remove();
  assert.deepEqual([source.listenerCount('SIGINT'), source.listenerCount('SIGTERM')], [0, 0]);
});

test('signals - exit codes are 128 + the signal number', () => {
  assert.deepEqual([signalExitCode('SIGINT'), signalExitCode('SIGTERM')], [130, 143]);
});
