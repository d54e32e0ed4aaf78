import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytes, pct, pValue, renderTable, sparkline, toCsv } from './format.js';

test('format - sparkline scales from ▁ (min) to █ (max), gaps as spaces, flat as ▄', () => {
  assert.equal(sparkline([0, 1 / 7, 2 / 7, 3 / 7, 4 / 7, 5 / 7, 6 / 7, 1]), '▁▂▃▄▅▆▇█');
  assert.equal(sparkline([0.8, null, 0.9]), '▁ █');
  assert.equal(sparkline([0.5, 0.5]), '▄▄');
  assert.equal(sparkline([null, null]), '  ');
  assert.equal(sparkline([]), '');
});

test('format - table columns align by code points, numbers right-aligned', () => {
  const out = renderTable(
    [{ header: 'GROUP' }, { header: 'ACC', align: 'right' }],
    [
      ['fp32', '90.58% ± 0.19%'],
      ['binary-weights', '9.00%'],
    ],
  );
  assert.equal(out, ['GROUP                      ACC', 'fp32            90.58% ± 0.19%', 'binary-weights           9.00%', ''].join('\n'));
});

test('format - CSV quotes commas, quotes and newlines; null is empty', () => {
  assert.equal(
    toCsv(
      ['a', 'b'],
      [
        ['x,y', 'say "hi"'],
        [null, 'two\nlines'],
        [1.5, undefined],
      ],
    ),
    'a,b\n"x,y","say ""hi"""\n,"two\nlines"\n1.5,\n',
  );
});

test('format - percentages, p-values and bytes', () => {
  assert.equal(pct(0.8912), '89.12%');
  assert.equal(pct(null), '-');
  assert.equal(pValue(0.154553), '0.1546');
  assert.equal(pValue(3.347e-6), '3.35e-6');
  assert.equal(bytes(512), '512 B');
  assert.equal(bytes(131_072), '128.0 KiB');
});
