import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GPU_STATUS_QUERY, parseGpuInfo, parseGpuStatus, readGpuStatus, readGpuWatts, type NvidiaSmiOptions } from './nvidia-smi.js';

test('telemetry nvidia-smi - GPU info CSV: first GPU, count, memory in bytes', () => {
  assert.deepEqual(parseGpuInfo('NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\nNVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\n'), {
    gpuModel: 'NVIDIA H100 80GB HBM3',
    gpuDriver: '550.54.15',
    gpuMemoryBytes: 81559 * 2 ** 20,
    gpuCount: 2,
  });
  assert.deepEqual(parseGpuInfo(''), { gpuModel: null, gpuDriver: null, gpuMemoryBytes: null, gpuCount: 0 });
  assert.equal(parseGpuInfo('T4, 535.1, [N/A]').gpuMemoryBytes, null);
});

test('telemetry nvidia-smi - GPU status CSV: utilisation as a fraction, [N/A] fields left out', () => {
  assert.deepEqual(parseGpuStatus('0, 87, 65, 250.12\n1, [N/A], 40, [N/A]\n'), [
    { index: 0, util: 0.87, tempC: 65, powerW: 250.12 },
    { index: 1, tempC: 40 },
  ]);
  assert.deepEqual(parseGpuStatus(''), []);
});

test('telemetry nvidia-smi - each query runs the command given, with its arguments and timeout; power needs a reading per GPU', async () => {
  const calls: Array<[string, readonly string[], number]> = [];
  const answer =
    (out: string): NvidiaSmiOptions['exec'] =>
    async (command, args, timeoutMs) => {
      calls.push([command, args, timeoutMs]);
      return out;
    };
  assert.deepEqual(await readGpuStatus({ exec: answer('0, 50, 70, 200\n') }), [{ index: 0, util: 0.5, tempC: 70, powerW: 200 }]);
  assert.deepEqual(calls, [['nvidia-smi', GPU_STATUS_QUERY, 2000]]);
  assert.deepEqual(await readGpuWatts({ command: '/opt/smi', timeoutMs: 50, exec: answer(' 250.5\n\n71\n') }), [250.5, 71]);
  assert.deepEqual(calls[1], ['/opt/smi', ['--query-gpu=power.draw', '--format=csv,noheader,nounits'], 50]);
  await assert.rejects(readGpuWatts({ exec: answer('250\n[N/A]\n') }), /nvidia-smi gave no power reading \("\[N\/A\]"\)/);
  await assert.rejects(readGpuWatts({ command: 'smi', exec: answer('\n') }), /smi listed no GPUs/);
});
