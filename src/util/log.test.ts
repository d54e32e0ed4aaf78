import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, parseLogRecord, type LogFormat } from './log.js';

const at = () => new Date(Date.UTC(2025, 5, 1, 12, 0, 0, 123));

function capture(format: LogFormat, fields?: Record<string, unknown>) {
  let out = '';
  const log = createLogger({ format, write: (s) => (out += s), now: at, ...(fields ? { fields } : {}) });
  return { log, lines: () => out.trimEnd().split('\n') };
}

test('log - text: timestamp (ISO 8601 UTC, ms), level, message; every line of a message carries both', () => {
  const { log, lines } = capture('text');
  log.info('coordinator listening', { port: 1 });
  log.warn('worker w1 suspect');
  log.error('run r1 failed: boom\n    at x (y.ts:1)');
  log.line('plain');
  assert.deepEqual(lines(), [
    '2025-06-01T12:00:00.123Z info  coordinator listening',
    '2025-06-01T12:00:00.123Z warn  worker w1 suspect',
    '2025-06-01T12:00:00.123Z error run r1 failed: boom',
    '2025-06-01T12:00:00.123Z error     at x (y.ts:1)',
    '2025-06-01T12:00:00.123Z info  plain',
  ]);
  assert.deepEqual(parseLogRecord('text', lines()[1]!), { ts: '2025-06-01T12:00:00.123Z', level: 'warn', msg: 'worker w1 suspect' });
});

test('log - json: one object per line, ts, level and msg first, then the fields', () => {
  const { log, lines } = capture('json', { component: 'coordinator' });
  log.debug('a "quoted"\nmessage', { port: 50051 });
  assert.equal(lines().length, 1, 'a multi-line message stays one line');
  assert.equal(
    lines()[0],
    '{"ts":"2025-06-01T12:00:00.123Z","level":"debug","msg":"a \\"quoted\\"\\nmessage","component":"coordinator","port":50051}',
  );
  assert.equal(parseLogRecord('json', '{"ts":"x","msg":"m"}'), null, 'no level: not a record');
  assert.equal(parseLogRecord('json', 'not json'), null);
});

test('log - relay: a child record keeps its timestamp and level and is marked with its source; a foreign line becomes a record', () => {
  const child = capture('json');
  child.log.warn('worker w1: heartbeat stream closed', { worker: 'w1' });
  const parent = capture('json');
  parent.log.relay(child.lines()[0]!, 'worker 0');
  parent.log.relay('Segmentation fault (core dumped)', 'worker 1', 'error');
  const [relayed, foreign] = parent.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(relayed, {
    ts: at().toISOString(),
    level: 'warn',
    msg: 'worker w1: heartbeat stream closed',
    worker: 'w1',
    source: 'worker 0',
  });
  assert.deepEqual(foreign, { ts: at().toISOString(), level: 'error', msg: 'Segmentation fault (core dumped)', source: 'worker 1' });

  const textChild = capture('text');
  textChild.log.warn('worker w1 suspect');
  const textParent = capture('text');
  textParent.log.relay(textChild.lines()[0]!, 'coordinator');
  textParent.log.relay('    at foo (bar.ts:1)', 'worker 0');
  assert.deepEqual(textParent.lines(), [
    '2025-06-01T12:00:00.123Z warn  [coordinator] worker w1 suspect',
    '2025-06-01T12:00:00.123Z info  [worker 0]     at foo (bar.ts:1)',
  ]);
});
