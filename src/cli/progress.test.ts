import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createEpochProgress, formatDuration, formatEpochLine, progressMode } from './progress.js';

function sink(isTTY: boolean): PassThrough & { text: () => string; isTTY: boolean; columns: number } {
  const s = new PassThrough() as PassThrough & { text: () => string; isTTY: boolean; columns: number };
  let text = '';
  s.on('data', (b: Buffer) => (text += b.toString()));
  s.text = () => text;
  s.isTTY = isTTY;
  s.columns = 200;
  return s;
}

test('progress - line format matches the documented shape', () => {
  const line = formatEpochLine({
    epoch: 3,
    epochs: 15,
    step: 120,
    totalSteps: 235,
    stats: { loss: 0.4123, accuracy: 0.8512, samplesPerS: 6120.4 },
    etaS: 4.2,
    barWidth: 10,
  });
  assert.equal(line, 'epoch 3/15 |█████░░░░░| 120/235 loss 0.412 acc 85.1% 6,120 samples/s ETA 4s');
  const plain = formatEpochLine({ epoch: 1, epochs: 2, step: 0, totalSteps: 10, stats: {}, etaS: undefined, barWidth: 0 });
  assert.equal(plain, 'epoch 1/2 0/10 0% ETA --');
  assert.deepEqual([formatDuration(4.4), formatDuration(65), formatDuration(7380)], ['4s', '1m05s', '2h03m']);
});

test('progress - mode: silent under --json/--quiet, tty or plain by stream', () => {
  assert.equal(progressMode({ json: true, stream: sink(true) }), 'silent');
  assert.equal(progressMode({ quiet: true, stream: sink(true) }), 'silent');
  assert.equal(progressMode({ stream: sink(true) }), 'tty');
  assert.equal(progressMode({ stream: sink(false) }), 'plain');
});

test('progress - plain output prints about every 10% and at the end', () => {
  const stream = sink(false);
  let clock = 0;
  const p = createEpochProgress({ epoch: 1, epochs: 1, total: 100, stream, now: () => clock });
  for (let step = 1; step <= 100; step++) {
    clock += 10;
    p.update(step, { loss: 1 / step, accuracy: step / 100, samplesPerS: 1000 });
  }
  p.stop();
  p.stop();
  const lines = stream.text().trimEnd().split('\n');
  assert.equal(lines.length, 10, stream.text());
  assert.match(lines[0]!, /^epoch 1\/1 10\/100 10% loss 0\.100 acc 10\.0% 1,000 samples\/s ETA 1s$/);
  assert.match(lines[9]!, /^epoch 1\/1 100\/100 100% .* ETA 0s$/);
});

test('progress - plain output also prints after 5 s without a 10% step', () => {
  const stream = sink(false);
  let clock = 0;
  const p = createEpochProgress({ epoch: 2, epochs: 3, total: 1000, stream, now: () => clock });
  for (let step = 1; step <= 30; step++) {
    clock += 1000;
    p.update(step);
  }
  assert.deepEqual(
    stream
      .text()
      .trimEnd()
      .split('\n')
      .map((l) => l.split(' ')[2]),
    ['5/1000', '10/1000', '15/1000', '20/1000', '25/1000', '30/1000'],
  );
  p.stop({ loss: 0.2 });
  assert.match(stream.text(), /1000\/1000 100% loss 0\.200/);
});

test('progress - silent writes nothing', () => {
  const stream = sink(true);
  const p = createEpochProgress({ epoch: 1, epochs: 1, total: 10, stream, enabled: false });
  p.update(5, { loss: 1 });
  p.stop();
  assert.equal(stream.text(), '');
});

test('progress - tty redraws a bar and releases its timer on stop', () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const stream = sink(true);
  const p = createEpochProgress({ epoch: 3, epochs: 15, total: 4, stream, barWidth: 8 });
  p.update(2, { loss: 0.5, accuracy: 0.5, samplesPerS: 100 });
  assert.equal(timers(), before + 1, 'cli-progress redraw timer running');
  p.stop({ loss: 0.25 });
  const text = stream.text();
  assert.match(text, /epoch 3\/15 \|████████\| 4\/4 loss 0\.250 acc 50\.0% 100 samples\/s ETA 0s/);
  assert.ok(text.endsWith('\n'), 'final line kept, cursor on a new line');
  assert.equal(timers(), before, 'timer released');
});
