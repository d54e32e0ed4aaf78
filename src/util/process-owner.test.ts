import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { currentProcessOwner, describeOwner, ownerVerdict, processOwner, type ProcessOwner } from './process-owner.js';

const here = currentProcessOwner();
const linux = process.platform === 'linux';

/** A child that sleeps until killed; killed when the test ends. */
function sleeper(t: { after(fn: () => void): void }) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  return child;
}

test('process owner - this process: host, pid and (Linux) boot id, pid namespace and start ticks; alive', { skip: !linux }, () => {
  assert.equal(here.pid, process.pid);
  assert.match(here.start ?? '', /^[0-9a-f-]{36}:\d+:\d+$/);
  assert.deepEqual(ownerVerdict(here), { state: 'alive', why: `${describeOwner(here)} is running` });
});

test('process owner - a child is alive while it runs and gone once killed', async (t) => {
  const child = sleeper(t);
  const owner = processOwner(child.pid!);
  assert.equal(ownerVerdict(owner).state, 'alive');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const verdict = ownerVerdict(owner);
  assert.equal(verdict.state, 'gone', verdict.why);
  assert.match(verdict.why, new RegExp(`process ${child.pid} on ${here.host}`));
});

test('process owner - a live pid with another start time is a later process that reused the pid: gone', { skip: !linux }, () => {
  const [boot, ns, ticks] = here.start!.split(':');
  const reused: ProcessOwner = { ...here, start: `${boot}:${ns}:${Number(ticks) + 1}` };
  assert.deepEqual(ownerVerdict(reused), {
    state: 'gone',
    why: `process ${here.pid} on ${here.host} is a later process that reused its pid`,
  });
});

test('process owner - another boot of this host is gone; another pid namespace or host cannot be checked', { skip: !linux }, () => {
  const [, ns, ticks] = here.start!.split(':');
  const rebooted = { ...here, start: `00000000-0000-0000-0000-000000000000:${ns}:${ticks}` };
  assert.equal(ownerVerdict(rebooted).state, 'gone');
  assert.match(ownerVerdict(rebooted).why, /has restarted since/);
  const [boot] = here.start!.split(':');
  assert.equal(ownerVerdict({ ...here, start: `${boot}:1:${ticks}` }).state, 'unknown');
  const elsewhere = ownerVerdict({ ...here, host: `${here.host}-other` });
  assert.deepEqual(elsewhere, {
    state: 'unknown',
    why: `it runs on another host (${here.host}-other), which cannot be checked from ${here.host}`,
  });
});

test('process owner - without a start record only the pid is checked', async (t) => {
  assert.equal(ownerVerdict({ ...here, start: null }).state, 'alive');
  const child = sleeper(t);
  const pid = child.pid!;
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(ownerVerdict({ host: here.host, pid, start: null }).state, 'gone');
});
