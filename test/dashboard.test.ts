import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startMonitorHttp } from '../coordinator/http.js';
import { createCoordinatorServer } from '../coordinator/index.js';
import { loadConfig } from '../src/config/index.js';
import { openStore } from '../src/store/index.js';
import { processesMentioning, spawnCli, writeTinyConfig } from './helpers/cluster.js';
import { tmpDir } from './helpers/tmp.js';

const CHROMIUM = '/usr/bin/chromium';

// Page functions run in the browser; this project compiles without the DOM library.
declare const document: { querySelector(selector: string): any; querySelectorAll(selector: string): any };

async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** Points the loss chart has drawn, once the page reports at least `min`. */
async function lossPoints(page: Page, min: number, timeoutMs: number): Promise<number> {
  const handle = await page.waitForFunction(
    (n) => {
      const svg = document.querySelector('#loss-chart');
      const drawn = svg ? svg.querySelectorAll('circle.point').length : 0;
      return drawn >= n && Number(svg.getAttribute('data-points')) === drawn ? drawn : false;
    },
    min,
    { timeout: timeoutMs, polling: 200 },
  );
  return (await handle.jsonValue()) as number;
}

test('dashboard - headless Chromium shows the workers of a running bnn launch --local 2 and a loss curve that grows', async (t) => {
  const dir = await tmpDir({ t });
  // Far more epochs than the test watches: the run is cancelled (Ctrl-C) at the end.
  const config = writeTinyConfig(dir.path, { epochs: 5000 });
  const browserStarting = launchBrowser();
  const launch = spawnCli(['launch', '--local', '2', config], { cwd: dir.path, t });
  const registered: string[] = [];
  const both = Promise.all([0, 1].map((i) => launch.waitForLine(new RegExp(`^\\[worker ${i}\\] worker (\\S+): registered with`), 60_000)));
  both.catch(() => undefined); // awaited below; a failure before then is reported there
  const [, url] = await launch.waitForLine(/^bnn: dashboard (http:\/\/127\.0\.0\.1:\d+\/) \(Prometheus metrics at /, 60_000);
  const browser = await browserStarting;
  t.after(() => browser.close());
  for (const [, id] of await both) registered.push(id!);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url!);
  assert.equal(await page.title(), 'bnn cluster');

  // Both workers, alive, each with its rank in the running run.
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('#workers tbody tr[data-worker]')].filter(
        (tr: any) => tr.children[2].textContent === 'alive' && /^[01]$/.test(tr.children[4].textContent ?? ''),
      ).length === 2,
    null,
    { timeout: 30_000, polling: 200 },
  );
  const shown = await page.$$eval('#workers tbody tr[data-worker]', (rows) => rows.map((r) => r.getAttribute('data-worker')!));
  assert.deepEqual(shown.sort(), registered.sort());
  const ranks = await page.$$eval('#workers tbody tr[data-worker]', (rows) => rows.map((r) => r.children[4]!.textContent));
  assert.deepEqual(ranks.sort(), ['0', '1']);

  // The curve grows while the run trains (points arrive as epoch events over /events).
  const first = await lossPoints(page, 2, 30_000);
  const later = await lossPoints(page, first + 2, 30_000);
  assert.ok(later > first, `loss points ${first} → ${later}`);
  assert.match((await page.textContent('#conn')) ?? '', /live/);
  assert.match((await page.textContent('#runs tbody tr.selected')) ?? '', /RUNNING/);
  if (process.env.BNN_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.BNN_DASHBOARD_SCREENSHOT, fullPage: true });
  assert.deepEqual(errors, []);

  process.kill(-launch.child.pid!, 'SIGINT');
  const done = await launch.exited;
  assert.equal(done.code, 130, done.stderr);
  assert.deepEqual(processesMentioning(dir.path), []);
});

test('dashboard - /events opens with a snapshot and follows runs; / and /dashboard.js are served; unknown paths 404, writes 405', async (t) => {
  const dir = await tmpDir({ t });
  const store = openStore(dir.join('bnn.db'));
  const server = createCoordinatorServer({ db: store.db, token: 'tok' });
  const monitor = (await startMonitorHttp(
    { coordinator: server.coordinator, db: store.db, grpc: server, stateIntervalMs: 100 },
    { host: '127.0.0.1', port: 0 },
  ))!;
  t.after(async () => {
    await monitor.close();
    await server.shutdown(0);
    store.close();
  });
  const page = await fetch(monitor.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.match(await page.text(), /<script src="dashboard.js"><\/script>/);
  const js = await fetch(`${monitor.url}dashboard.js`);
  assert.match(js.headers.get('content-type')!, /^text\/javascript/);
  assert.match(await js.text(), /new EventSource\('events'\)/);
  const missing = await fetch(`${monitor.url}nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /GET \/ \(dashboard\), \/metrics/);
  assert.equal((await fetch(`${monitor.url}metrics`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`${monitor.url}api/runs/no-such-run/epochs`)).status, 404);

  const ac = new AbortController();
  const res = await fetch(`${monitor.url}events`, { signal: ac.signal });
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const next = async (kind: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = block.match(/^event: (.+)$/m)?.[1];
        const data = block.match(/^data: (.+)$/m)?.[1];
        if (event === kind && data) return JSON.parse(data) as Record<string, unknown>;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended before a '${kind}' event`);
      buffer += value;
    }
  };
  const snapshot = await next('snapshot');
  assert.deepEqual([snapshot.workers, snapshot.active, snapshot.recent], [[], [], []]);
  const config = await loadConfig(writeTinyConfig(dir.path));
  const info = server.coordinator.submit(JSON.stringify(config), 2, 'tiny.yaml');
  const run = await next('run');
  assert.deepEqual([run.runId, run.status, run.workers], [info.run_id, 'PENDING', 2]);
  const state = await next('state');
  assert.deepEqual(
    (state.active as Array<{ id: string; status: string }>).map((r) => [r.id, r.status]),
    [[info.run_id, 'PENDING']],
  );
  ac.abort();
  await reader.cancel().catch(() => undefined);
});
