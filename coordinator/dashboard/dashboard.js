// The dashboard's behaviour: follows /events (server-sent events) and redraws the worker table,
// the run list and two inline-SVG charts (loss and accuracy by epoch). Plain browser JS, no deps.
// biome-ignore lint/suspicious/noRedundantUseStrict: a classic browser script (not a module), where strict mode is opt-in
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
/** Dead workers stay listed (struck through) this long after they went. */
const DEAD_KEPT_MS = 60_000;

const state = {
  workers: [],
  dead: new Map(),
  active: [],
  recent: [],
  curves: {},
  selected: null,
  pinned: false,
};

const $ = (sel) => document.querySelector(sel);
const fmt = (x, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`);

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function log(line) {
  const el = $('#log');
  el.textContent = `${new Date().toLocaleTimeString()}  ${line}\n${el.textContent}`.split('\n').slice(0, 200).join('\n');
}

function renderWorkers() {
  const tbody = $('#workers tbody');
  tbody.replaceChildren();
  const now = Date.now();
  for (const [id, d] of state.dead) if (now - d.at > DEAD_KEPT_MS || state.workers.some((w) => w.id === id)) state.dead.delete(id);
  const rows = [...state.workers, ...[...state.dead.values()].map((d) => d.worker)];
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.append(cell('no workers connected', 'empty'));
    tr.firstChild.colSpan = 14;
    tbody.append(tr);
  }
  for (const w of rows) {
    const t = w.telemetry || {};
    const gpus = Array.isArray(t.gpus) ? t.gpus : [];
    const gpu = (key, f) => (gpus.length ? gpus.map((g) => f(g[key])).join(' / ') : '–');
    const tr = document.createElement('tr');
    tr.dataset.worker = w.id;
    tr.className = w.state === 'dead' ? 'dead' : '';
    tr.append(
      cell(w.id),
      cell(w.hostname),
      cell(w.state, `state-${w.state}`),
      cell(w.runId || 'idle'),
      cell(w.rank === null || w.rank === undefined ? '–' : String(w.rank), 'num'),
      cell(fmt(w.step), 'num'),
      cell(fmt(w.samplesPerS), 'num'),
      cell(pct(t.cpuUtil), 'num'),
      cell(fmt(t.cpuTempC, 0), 'num'),
      cell(fmt(t.cpuPowerW, 0), 'num'),
      cell(gpu('util', pct), 'num'),
      cell(
        gpu('tempC', (x) => fmt(x, 0)),
        'num',
      ),
      cell(
        gpu('powerW', (x) => fmt(x, 0)),
        'num',
      ),
      cell(w.state === 'dead' ? 'gone' : `${fmt(w.heartbeatAgeS, 1)} s`, 'num'),
    );
    tbody.append(tr);
  }
  const alive = state.workers.filter((w) => w.state === 'alive').length;
  $('#summary').textContent = `${alive} worker(s) alive · ${state.active.length} active run(s)`;
}

function allRuns() {
  const byId = new Map(state.recent.map((r) => [r.id, { ...r }]));
  for (const a of state.active)
    byId.set(a.id, {
      ...(byId.get(a.id) || {}),
      id: a.id,
      name: a.name,
      status: a.status,
      waiting: a.waiting,
      generation: a.generation,
      epochs: a.epochs,
    });
  return [...byId.values()].sort((a, b) => (b.createdAt || '9').localeCompare(a.createdAt || '9'));
}

function renderRuns() {
  const tbody = $('#runs tbody');
  tbody.replaceChildren();
  const runs = allRuns();
  if (!state.pinned) {
    const pick = state.active.find((r) => r.status === 'RUNNING') || state.active[0] || runs[0];
    if (pick) state.selected = pick.id;
  }
  if (runs.length === 0) {
    const tr = document.createElement('tr');
    tr.append(cell('no runs yet', 'empty'));
    tr.firstChild.colSpan = 9;
    tbody.append(tr);
  }
  for (const r of runs) {
    const tr = document.createElement('tr');
    tr.dataset.run = r.id;
    if (r.id === state.selected) tr.className = 'selected';
    const done = (state.curves[r.id] || []).length;
    tr.append(
      cell(r.id),
      cell(r.name || ''),
      cell(r.status === 'PENDING' && r.waiting ? `PENDING: ${r.waiting}` : r.status || ''),
      cell(r.model || ''),
      cell(r.precision || ''),
      cell(r.dataset || ''),
      cell(`${done}/${r.epochs ?? '?'}`, 'num'),
      cell(pct(r.finalTestAcc), 'num'),
      cell(r.generation ? String(r.generation) : '–', 'num'),
    );
    tr.addEventListener('click', () => {
      state.selected = r.id;
      state.pinned = true;
      if (!state.curves[r.id]) void loadCurve(r.id);
      render();
    });
    tbody.append(tr);
  }
}

async function loadCurve(runId) {
  try {
    const res = await fetch(`api/runs/${encodeURIComponent(runId)}/epochs`);
    if (!res.ok) return;
    const body = await res.json();
    mergeCurve(runId, body.epochs);
    render();
  } catch {
    /* offline: the next snapshot brings it */
  }
}

function mergeCurve(runId, points) {
  const byEpoch = new Map((state.curves[runId] || []).map((p) => [p.epoch, p]));
  for (const p of points) byEpoch.set(p.epoch, p);
  state.curves[runId] = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent.append(e);
  return e;
}

function niceTicks(lo, hi, n) {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toFixed(10));
  return ticks;
}

/** A line chart of `series` ([{name, cls, points: [[x, y]]}]) into `svg`; sets data-points to the points drawn. */
function chart(svg, series, opts) {
  svg.replaceChildren();
  const W = svg.clientWidth || 600;
  const H = svg.clientHeight || 260;
  const m = { l: 48, r: 12, t: 24, b: 30 };
  const pts = series.flatMap((s) => s.points);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.dataset.points = String(pts.length);
  if (pts.length === 0) {
    el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg).textContent = 'waiting for the first epoch…';
    return;
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(1, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  let y0 = opts.yMin ?? Math.min(...ys);
  let y1 = opts.yMax ?? Math.max(...ys);
  const pad = (y1 - y0) * 0.08;
  if (opts.yMin === undefined) y0 = Math.max(0, y0 - pad);
  if (opts.yMax === undefined) y1 += pad;
  if (y1 - y0 < 1e-9) y1 = y0 + 1;
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  for (const t of niceTicks(y0, y1, 5)) {
    el('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t) }, svg);
    el('text', { x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end' }, svg).textContent = opts.format(t);
  }
  for (const t of niceTicks(x0, x1, Math.min(10, Math.ceil(x1 - x0))).filter((t) => Number.isInteger(t))) {
    el('text', { x: X(t), y: H - m.b + 16, 'text-anchor': 'middle' }, svg).textContent = String(t);
  }
  el('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }, svg);
  el('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }, svg);
  el('text', { x: W - m.r, y: H - 4, 'text-anchor': 'end' }, svg).textContent = 'epoch';
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    el(
      'path',
      { class: `series-${s.cls}`, d: s.points.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('') },
      svg,
    );
    for (const p of s.points)
      el('circle', { class: `point series-${s.cls}`, cx: X(p[0]), cy: Y(p[1]), r: 3 }, svg).append(
        Object.assign(document.createElementNS(SVG, 'title'), { textContent: `${s.name} epoch ${p[0]}: ${opts.format(p[1])}` }),
      );
    const lx = W - m.r - (series.length - i) * 64;
    el('rect', { x: lx, y: 4, width: 10, height: 10, class: `legend series-${s.cls}`, style: `fill: var(--${s.cls})` }, svg);
    el('text', { x: lx + 14, y: 13 }, svg).textContent = s.name;
  });
}

function renderCurves() {
  const points = state.curves[state.selected] || [];
  const run = allRuns().find((r) => r.id === state.selected);
  $('#curve-title').textContent = run
    ? `run ${run.id} · ${run.name || ''} · ${run.status || ''} · ${points.length}/${run.epochs ?? '?'} epochs`
    : 'no run selected';
  $('#curve-title').className = run ? '' : 'empty';
  const pick = (key) => points.filter((p) => p[key] !== null && p[key] !== undefined).map((p) => [p.epoch, p[key]]);
  chart(
    $('#loss-chart'),
    [
      { name: 'train', cls: 'train', points: pick('trainLoss') },
      { name: 'test', cls: 'test', points: pick('testLoss') },
    ],
    { format: (v) => v.toFixed(v < 10 ? 2 : 0) },
  );
  chart(
    $('#acc-chart'),
    [
      { name: 'train', cls: 'train', points: pick('trainAcc') },
      { name: 'test', cls: 'test', points: pick('testAcc') },
    ],
    { format: (v) => `${(100 * v).toFixed(0)}%`, yMax: 1 },
  );
}

function render() {
  renderWorkers();
  renderRuns();
  renderCurves();
}

function applySnapshot(s) {
  state.workers = s.workers;
  state.active = s.active;
  state.recent = s.recent;
  for (const [id, points] of Object.entries(s.curves)) mergeCurve(id, points);
  render();
}

function connect() {
  const es = new EventSource('events');
  const on = (kind, fn) => es.addEventListener(kind, (e) => fn(JSON.parse(e.data)));
  es.onopen = () => {
    $('#conn').textContent = 'live';
    $('#conn').className = 'live';
  };
  es.onerror = () => {
    $('#conn').textContent = 'reconnecting…';
    $('#conn').className = '';
  };
  on('snapshot', applySnapshot);
  on('state', (s) => {
    state.workers = s.workers;
    state.active = s.active;
    renderWorkers();
    renderRuns();
  });
  on('epoch', (e) => {
    mergeCurve(e.runId, [{ epoch: e.epoch, trainLoss: e.trainLoss, trainAcc: e.trainAcc, testLoss: e.testLoss, testAcc: e.testAcc }]);
    log(
      `run ${e.runId} epoch ${e.epoch}/${e.epochs}: train loss ${e.trainLoss.toFixed(4)}${e.testAcc !== null ? `, test acc ${pct(e.testAcc)}` : ''}`,
    );
    render();
  });
  on('run', (e) => {
    log(`run ${e.runId} ${e.status}${e.error ? `: ${e.error}` : ''}`);
    // A new or finished run changes the run list: take a fresh snapshot of it.
    void fetch('api/state')
      .then((r) => r.json())
      .then(applySnapshot)
      .catch(() => undefined);
  });
  on('generation', (e) => {
    log(`run ${e.runId} generation ${e.generation}: ${e.worldSize} worker(s)${e.reason ? ` (${e.reason})` : ''}`);
    void fetch('api/state')
      .then((r) => r.json())
      .then(applySnapshot)
      .catch(() => undefined);
  });
  on('checkpoint', (e) => log(`run ${e.runId} checkpoint at step ${e.step}: ${e.path}`));
  on('worker', (e) => {
    log(`worker ${e.workerId} ${e.state}${e.why ? ` (${e.why})` : ''}`);
    if (e.state === 'dead') {
      const w = state.workers.find((x) => x.id === e.workerId);
      if (w) state.dead.set(w.id, { at: Date.now(), worker: { ...w, state: 'dead' } });
      state.workers = state.workers.filter((x) => x.id !== e.workerId);
      renderWorkers();
    }
  });
}

connect();
window.addEventListener('resize', renderCurves);
