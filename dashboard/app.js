/* errgate dashboard: polls /alerts (windows, an hour of history, alerts)
 * and /metrics.json (error codes, upstream health, refusals) every 2 s and
 * draws everything by hand as SVG. Nothing is fetched from anywhere else.
 * Text from the server goes in through textContent, never as HTML. */
'use strict';

const POLL_MS = 2000;
const SVGNS = 'http://www.w3.org/2000/svg';
const COLORS = ['#4cc2ff', '#ff7ab6', '#f5b83d', '#3fcf8e', '#9a8cff', '#ff8a4c'];
const state = { scope: '*', alerts: null, metrics: null, last: 0, failed: false };

const $ = (id) => document.getElementById(id);
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function sv(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
const scopeName = (r) => (r === null ? '(no route)' : r === '*' ? 'all routes' : r);
const scopeKey = (r) => (r === null ? '(none)' : r);
function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
function fmtPct(f) {
  if (f === null || f === undefined || isNaN(f)) return '–';
  const p = f * 100;
  return (p === 0 ? '0' : p < 0.1 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)) + '%';
}
function fmtRate(r) { return r === 0 ? '0' : r < 10 ? r.toFixed(2) : r < 100 ? r.toFixed(1) : fmtInt(r); }
function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms === 0) return '0';
  return ms < 1 ? ms.toFixed(2) + ' ms' : ms < 1000 ? ms.toFixed(ms < 10 ? 1 : 0) + ' ms' : (ms / 1000).toFixed(2) + ' s';
}
function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + ' s ago' : s < 3600 ? Math.floor(s / 60) + ' min ago' : Math.floor(s / 3600) + ' h ago';
}

async function getJSON(path) {
  /* location.origin: a page opened as http://user:token@host/ has a base URL
   * with credentials, and fetch() refuses those; the session cookie set with
   * the page carries the authorisation instead */
  const r = await fetch(location.origin + path, { cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}

async function poll() {
  try {
    const [a, m] = await Promise.all([getJSON('/alerts'), getJSON('/metrics.json').catch(() => null)]);
    state.alerts = a; state.metrics = m; state.last = Date.now(); state.failed = false;
    render();
  } catch (e) {
    state.failed = true;
  }
  status();
}

function status() {
  const live = $('live');
  live.className = 'dot ' + (state.failed ? 'off' : state.last ? 'on' : '');
  $('updated').textContent = state.failed ? 'cannot reach the gateway' :
    state.last ? 'live · updated ' + new Date(state.last).toLocaleTimeString('en-GB') : 'connecting…';
}

/* --- data helpers ------------------------------------------------------- */

function win(seconds) {
  const ws = (state.alerts && state.alerts.windows) || [];
  return ws.find((w) => w.window_s === seconds) || ws[0] || null;
}
function winScope(w, scope) {
  if (!w) return null;
  if (scope === '*') return w.all;
  return w.routes.find((r) => r.route === scope) || null;
}
function histSeries(scope) {
  const h = state.alerts && state.alerts.history;
  if (!h) return null;
  return h.series.find((s) => s.route === scope) || null;
}
function family(name) {
  const f = state.metrics && state.metrics.metrics;
  if (!f) return null;
  return f[name] || f[name + '_total'] || null;
}

/* --- charts --------------------------------------------------------------- */

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p; /* quarters stay round */
  return 10 * p;
}

/* series: [{name, color, values (null: no data), width}] over times t (s) */
function lineChart(svg, t, series, yfmt, cap) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = svg.clientWidth || 400, H = svg.clientHeight || 190;
  const L = 46, R = 10, T = 20, B = 20, iw = W - L - R, ih = H - T - B;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  const top = cap && max <= cap && max * 1.1 > cap ? cap : niceMax(max * 1.1);
  const x = (i) => L + (t.length > 1 ? (i / (t.length - 1)) * iw : 0);
  const y = (v) => T + ih - (v / top) * ih;
  const grid = sv('g', { class: 'grid' }), axis = sv('g', { class: 'axis' });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4, yy = y(v);
    grid.appendChild(sv('line', { x1: L, x2: W - R, y1: yy, y2: yy }));
    axis.appendChild(sv('text', { x: L - 6, y: yy + 3.5, 'text-anchor': 'end' }, yfmt(v)));
  }
  const span = t.length > 1 ? t[t.length - 1] - t[0] : 600;
  const every = [60, 120, 300, 600, 900, 1800].find((e) => span / e <= 7) || 3600;
  for (let i = 0; i < t.length; i++) {
    if (t[i] % every === 0) {
      const d = new Date(t[i] * 1000);
      const edge = x(i) > W - R - 16 ? 'end' : x(i) < L + 16 ? 'start' : 'middle';
      axis.appendChild(sv('text', { x: x(i), y: H - 5, 'text-anchor': edge },
        d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })));
      grid.appendChild(sv('line', { x1: x(i), x2: x(i), y1: T, y2: T + ih, opacity: 0.5 }));
    }
  }
  svg.appendChild(grid); svg.appendChild(axis);
  const g = sv('g', { class: 'series' });
  let any = false;
  for (const s of series) {
    let d = '', area = '', open = false, first = 0;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i];
      if (v === null) {
        if (open && s.fill) area += `L${x(i - 1)},${y(0)}L${x(first)},${y(0)}Z`;
        open = false; continue;
      }
      any = any || v > 0;
      d += (open ? 'L' : 'M') + x(i).toFixed(1) + ',' + y(v).toFixed(1);
      if (s.fill) area += (open ? 'L' : 'M') + x(i).toFixed(1) + ',' + y(v).toFixed(1);
      if (!open) first = i;
      open = true;
    }
    if (open && s.fill) area += `L${x(s.values.length - 1)},${y(0)}L${x(first)},${y(0)}Z`;
    if (s.fill && area) g.appendChild(sv('path', { class: 'area', d: area, fill: s.color }));
    g.appendChild(sv('path', { class: 'line', d, stroke: s.color, 'stroke-width': s.width || 1.8 }));
    /* a point with no neighbour draws no line: a dot instead */
    s.values.forEach((v, i) => {
      const prev = i > 0 ? s.values[i - 1] : null, next = i + 1 < s.values.length ? s.values[i + 1] : null;
      if (v !== null && prev === null && next === null)
        g.appendChild(sv('circle', { cx: x(i), cy: y(v), r: 2.6, fill: s.color }));
    });
  }
  svg.appendChild(g);
  const leg = sv('g', { class: 'legend' });
  let lx = L;
  for (const s of series) {
    const w = 22 + s.name.length * 6.2;
    if (lx + w > W - R + 8) { leg.appendChild(sv('text', { x: lx, y: 10 }, '…')); break; }
    leg.appendChild(sv('rect', { x: lx, y: 5, width: 10, height: 3, rx: 1.5, fill: s.color }));
    leg.appendChild(sv('text', { x: lx + 14, y: 10 }, s.name));
    lx += w;
  }
  svg.appendChild(leg);
  if (!any) svg.appendChild(sv('text', { class: 'empty', x: L + iw / 2, y: T + ih / 2, 'text-anchor': 'middle' }, 'no data yet'));
  /* hover: a line and the values at the nearest step */
  const hover = sv('g', { class: 'hover', visibility: 'hidden' });
  const hl = sv('line', { y1: T, y2: T + ih }), ht = sv('text', { y: T + 12 });
  hover.appendChild(hl); hover.appendChild(ht); svg.appendChild(hover);
  svg.onmousemove = (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    const i = Math.max(0, Math.min(t.length - 1, Math.round(((px - L) / iw) * (t.length - 1))));
    hl.setAttribute('x1', x(i)); hl.setAttribute('x2', x(i));
    const when = new Date(t[i] * 1000).toLocaleTimeString('en-GB');
    ht.textContent = when + '  ' + series.map((s) => s.name + ' ' + (s.values[i] === null ? '–' : yfmt(s.values[i]))).join('  ');
    const right = x(i) > L + iw / 2;
    ht.setAttribute('x', right ? x(i) - 6 : x(i) + 6);
    ht.setAttribute('text-anchor', right ? 'end' : 'start');
    hover.setAttribute('visibility', 'visible');
  };
  svg.onmouseleave = () => hover.setAttribute('visibility', 'hidden');
}

function spark(values) {
  const svg = sv('svg', { class: 'spark', viewBox: '0 0 140 22', preserveAspectRatio: 'none' });
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  const top = max > 0 ? max : 1;
  let d = '', open = false;
  values.forEach((v, i) => {
    if (v === null) { open = false; return; }
    d += (open ? 'L' : 'M') + ((i / Math.max(1, values.length - 1)) * 140).toFixed(1) + ',' + (20 - (v / top) * 18).toFixed(1);
    open = true;
  });
  svg.appendChild(sv('path', { d }));
  values.forEach((v, i) => {
    if (v !== null && (i === 0 || values[i - 1] === null) && (i + 1 === values.length || values[i + 1] === null))
      svg.appendChild(sv('circle', { cx: ((i / Math.max(1, values.length - 1)) * 140).toFixed(1), cy: (20 - (v / top) * 18).toFixed(1), r: 1.8, fill: '#ff7ab6' }));
  });
  return svg;
}

/* --- rendering ------------------------------------------------------------ */

function render() {
  const a = state.alerts;
  if (!a) return;
  $('instance').textContent = a.instance ? '· ' + a.instance : '';
  if (!a.enabled) { $('updated').textContent = 'the monitor is off (alerts.enabled: false)'; return; }
  renderRoutes(); renderTiles(); renderCharts(); renderAlerts(); renderCodes(); renderUpstreams();
  renderRefusals(); renderTable();
}

function routeList() {
  const h = state.alerts.history;
  return h ? h.series.map((s) => s.route).filter((r) => r !== '*') : [];
}

function renderRoutes() {
  const nav = $('routes');
  const want = ['*'].concat(routeList());
  if (nav.dataset.sig !== JSON.stringify(want) || nav.dataset.sel !== String(state.scope)) {
    nav.textContent = '';
    for (const r of want) {
      const b = el('button', { type: 'button', 'data-scope': scopeKey(r) }, scopeName(r));
      if (r === state.scope) b.className = 'sel';
      b.onclick = () => { state.scope = r; render(); };
      nav.appendChild(b);
    }
    nav.dataset.sig = JSON.stringify(want); nav.dataset.sel = String(state.scope);
  }
}

function lastValue(arr) {
  if (!arr) return null;
  for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== null) return arr[i];
  return null;
}

function renderTiles() {
  const w = win(60), s = winScope(w, state.scope), a = state.alerts;
  const req = s ? s.requests : 0, secs = w ? w.window_s : 60;
  $('k-rps').textContent = fmtRate(req / secs);
  $('k-req').textContent = fmtInt(req) + ' requests in ' + secs + ' s';
  const e = $('k-err'), f = $('k-5xx');
  e.textContent = s && req ? fmtPct(s.error_rate) : '–';
  e.className = 'value ' + (!req ? '' : s.error_rate > 0.05 ? 'bad' : s.error_rate > 0.01 ? 'warn' : 'good');
  $('k-err5').textContent = s ? fmtInt((s.status['4xx'] || 0) + (s.status['5xx'] || 0)) + ' errors' : '–';
  f.textContent = s && req ? fmtPct(s.server_error_rate) : '–';
  f.className = 'value ' + (!req ? '' : s.server_error_rate > 0.01 ? 'bad' : s.server_error_rate > 0 ? 'warn' : 'good');
  $('k-5xxn').textContent = s ? fmtInt(s.status['5xx'] || 0) + ' 5xx' : '–';
  const h = histSeries(state.scope);
  $('k-p99').textContent = h && h.p99_ms ? fmtMs(lastValue(h.p99_ms)) : '–';
  $('k-p50').textContent = h && h.p50_ms ? 'p50 ' + fmtMs(lastValue(h.p50_ms)) : 'metrics are off';
  const n = a.firing.length, k = $('k-firing');
  k.textContent = String(n);
  k.className = 'value ' + (n ? (a.firing.some((x) => x.severity === 'critical') ? 'bad' : 'warn') : 'good');
  const wh = a.webhooks || {};
  $('k-hooks').textContent = wh.configured ? `${wh.delivered} webhook deliveries · ${wh.failed} failed` : 'no webhooks configured';
}

/* The first step worth showing: the hour, or less when the history is
 * shorter (at least 5 minutes), so a young gateway's lines are not a
 * sliver at the right edge. */
function viewStart(h) {
  const all = h.series.find((s) => s.route === '*');
  const n = h.t.length;
  let first = all ? all.requests.findIndex((v) => v > 0) : 0;
  if (first < 0) first = n;
  return Math.max(0, Math.min(first, n - 30));
}
function sliceHistory(h) {
  const k = viewStart(h);
  const cut = (a) => (a ? a.slice(k) : a);
  /* the step under way is not over: its rate is over the seconds it has had
   * (else the line dips at the right edge) */
  const lastT = h.t[h.t.length - 1], now = Date.parse(state.alerts.generated_at || '') / 1000;
  const lastSpan = now >= lastT ? Math.max(1, Math.min(h.step_s, now - lastT + 1)) : h.step_s;
  return { step_s: h.step_s, last_span: lastSpan, t: h.t.slice(k), series: h.series.map((s) => ({
    route: s.route, requests: cut(s.requests), '4xx': cut(s['4xx']), '5xx': cut(s['5xx']),
    p50_ms: cut(s.p50_ms), p99_ms: cut(s.p99_ms) })) };
}

function renderCharts() {
  const h = state.alerts.history && sliceHistory(state.alerts.history);
  if (!h) return;
  const histSeries = (scope) => h.series.find((s) => s.route === scope) || null;
  const step = h.step_s;
  const rate = (arr) => arr.map((v, i) => v / (i === arr.length - 1 ? h.last_span : step));
  const errRate = (s) => s.requests.map((n, i) => (n ? ((s['4xx'][i] + s['5xx'][i]) / n) * 100 : null));
  if (state.scope === '*') {
    /* all routes: the busiest routes each as a line, the total wider */
    const all = histSeries('*');
    const routes = h.series.filter((s) => s.route !== '*')
      .map((s) => ({ s, n: s.requests.reduce((x, y) => x + y, 0) })).filter((x) => x.n > 0)
      .sort((p, q) => q.n - p.n).slice(0, 5).map((x) => x.s);
    const lines = (f, total) => (total ? [{ name: 'all', color: '#d7dee8', values: f(all), width: 2.4 }] : [])
      .concat(routes.map((s, i) => ({ name: scopeName(s.route), color: COLORS[i % COLORS.length], values: f(s) })));
    lineChart($('c-rate'), h.t, lines((s) => rate(s.requests), true), (v) => fmtRate(v));
    lineChart($('c-err'), h.t, lines(errRate, true), (v) => (v === 0 ? '0' : v.toFixed(v < 10 ? 1 : 0)) + '%', 100);
    lineChart($('c-lat'), h.t, all && all.p99_ms ? lines((s) => s.p99_ms, true).map((l) => ({ ...l, name: l.name + ' p99' })) : [],
      (v) => fmtMs(v));
  } else {
    const s = histSeries(state.scope);
    if (!s) return;
    lineChart($('c-rate'), h.t, [
      { name: 'requests', color: COLORS[0], values: rate(s.requests), fill: true },
      { name: '4xx', color: COLORS[2], values: rate(s['4xx']) },
      { name: '5xx', color: '#ff5d5d', values: rate(s['5xx']) }], (v) => fmtRate(v));
    lineChart($('c-err'), h.t, [
      { name: 'errors', color: COLORS[1], values: errRate(s), fill: true },
      { name: '5xx', color: '#ff5d5d', values: s.requests.map((n, i) => (n ? (s['5xx'][i] / n) * 100 : null)) }],
    (v) => (v === 0 ? '0' : v.toFixed(v < 10 ? 1 : 0)) + '%', 100);
    lineChart($('c-lat'), h.t, s.p50_ms ? [
      { name: 'p50', color: COLORS[3], values: s.p50_ms, fill: true },
      { name: 'p99', color: COLORS[4], values: s.p99_ms }] : [], (v) => fmtMs(v));
  }
}

function renderAlerts() {
  const ul = $('alerts');
  ul.textContent = '';
  const a = state.alerts;
  const shown = a.firing.concat(a.alerts.filter((x) => x.state === 'resolved' && x.resolved_at &&
    Date.now() - Date.parse(x.resolved_at) < 3600e3));
  if (!shown.length) { ul.appendChild(el('li', { class: 'none' }, 'Nothing is firing.')); return; }
  for (const x of shown) {
    const li = el('li', { class: x.state === 'resolved' ? 'resolved' : x.severity, 'data-alert': x.name,
      'data-route': scopeKey(x.route), 'data-state': x.state });
    const t = el('div', { class: 't' });
    t.appendChild(el('span', {}, x.name + ' · ' + scopeName(x.route)));
    t.appendChild(el('span', { class: 'badge ' + (x.state === 'resolved' ? 'resolved' : x.severity) },
      x.state === 'resolved' ? 'resolved' : x.severity));
    li.appendChild(t);
    li.appendChild(el('div', { class: 's' }, x.summary));
    li.appendChild(el('div', { class: 's' }, x.state === 'resolved' ? 'resolved ' + ago(x.resolved_at) : 'firing for ' + ago(x.fired_at).replace(' ago', '')));
    ul.appendChild(li);
  }
}

function renderCodes() {
  const ul = $('codes');
  ul.textContent = '';
  const f = family('errgate_errors');
  const by = {};
  for (const s of (f && f.series) || []) {
    if (state.scope !== '*' && s.labels.route !== scopeKey(state.scope)) continue;
    by[s.labels.code] = (by[s.labels.code] || 0) + s.value;
  }
  const top = Object.entries(by).filter((e) => e[1] > 0).sort((p, q) => q[1] - p[1]).slice(0, 8);
  if (!top.length) { ul.appendChild(el('li', { class: 'none' }, f ? 'No error responses.' : 'Metrics are off.')); return; }
  const max = top[0][1];
  for (const [code, n] of top) {
    const li = el('li', { 'data-code': code });
    li.appendChild(el('span', {}, code));
    li.appendChild(el('span', { class: 'n' }, fmtInt(n)));
    const bar = el('div', { class: 'bar' }), fill = el('i');
    fill.style.width = Math.max(2, (n / max) * 100) + '%';
    bar.appendChild(fill); li.appendChild(bar);
    ul.appendChild(li);
  }
}

function renderUpstreams() {
  const ul = $('upstreams');
  ul.textContent = '';
  const up = family('errgate_upstream_server_up'), fails = family('errgate_upstream_server_consecutive_failures');
  const servers = (up && up.series) || [];
  if (!servers.length) { ul.appendChild(el('li', { class: 'none' }, up ? 'No upstream servers.' : 'Metrics are off.')); return; }
  for (const s of servers) {
    const f = ((fails && fails.series) || []).find((x) => x.labels.upstream === s.labels.upstream && x.labels.server === s.labels.server);
    const ok = s.value >= 1;
    const li = el('li', { 'data-upstream': s.labels.upstream, 'data-server': s.labels.server, 'data-up': ok ? '1' : '0' });
    li.appendChild(el('span', { class: 'dot ' + (ok ? 'up' : 'down') }));
    li.appendChild(el('span', { class: 'u' }, s.labels.upstream));
    li.appendChild(el('code', {}, s.labels.server));
    li.appendChild(el('span', { class: 'f' }, ok ? 'up' : 'down' + (f && f.value ? ' · ' + f.value + (f.value === 1 ? ' failure' : ' failures') : '')));
    ul.appendChild(li);
  }
}

function renderRefusals() {
  const tb = $('refusals').tBodies[0];
  tb.textContent = '';
  const f = family('errgate_traffic_refusals');
  const rows = ((f && f.series) || []).filter((s) => s.value > 0 &&
    (state.scope === '*' || s.labels.route === scopeKey(state.scope))).sort((p, q) => q.value - p.value);
  if (!rows.length) {
    const tr = el('tr'); tr.appendChild(el('td', { colspan: 4, class: 'none' }, 'No refusals.')); tb.appendChild(tr); return;
  }
  for (const s of rows.slice(0, 10)) {
    const tr = el('tr', { 'data-route': s.labels.route, 'data-policy': s.labels.policy, 'data-kind': s.labels.kind });
    tr.appendChild(el('td', {}, s.labels.route));
    tr.appendChild(el('td', {}, s.labels.kind));
    tr.appendChild(el('td', {}, s.labels.policy));
    tr.appendChild(el('td', { class: 'n', 'data-k': 'refused' }, fmtInt(s.value)));
    tb.appendChild(tr);
  }
}

function renderTable() {
  const ws = state.alerts.windows || [];
  const w = ws.reduce((p, q) => (!p || q.window_s > p.window_s ? q : p), null);
  if (!w) return;
  $('win-label').textContent = (w.window_s % 60 ? w.window_s + ' s' : w.window_s / 60 + ' min') + ' window';
  const tb = $('route-table').tBodies[0];
  tb.textContent = '';
  const rows = [{ ...w.all, route: '*' }].concat(w.routes);
  const hs = state.alerts.history && sliceHistory(state.alerts.history);
  for (const r of rows) {
    if (r.route !== '*' && !r.requests && r.route === null) continue;
    const tr = el('tr', { 'data-route': scopeKey(r.route) });
    const name = el('td', {}, scopeName(r.route));
    if (r.route === '*') name.style.fontWeight = '600';
    tr.appendChild(name);
    const cell = (k, v, cls) => tr.appendChild(el('td', { class: 'n' + (cls ? ' ' + cls : ''), 'data-k': k }, v));
    cell('requests', fmtInt(r.requests));
    cell('rps', fmtRate(r.requests / w.window_s));
    cell('2xx', fmtInt(r.status['2xx'] || 0));
    cell('4xx', fmtInt(r.status['4xx'] || 0));
    cell('5xx', fmtInt(r.status['5xx'] || 0));
    cell('error_rate', r.requests ? fmtPct(r.error_rate) : '–', r.error_rate > 0.05 ? 'bad' : r.error_rate > 0.01 ? 'warn' : '');
    cell('server_error_rate', r.requests ? fmtPct(r.server_error_rate) : '–', r.server_error_rate > 0.01 ? 'bad' : '');
    const h = hs && hs.series.find((x) => x.route === r.route), td = el('td');
    if (h) td.appendChild(spark(h.requests.map((n, i) => (n ? (h['4xx'][i] + h['5xx'][i]) / n : null))));
    tr.appendChild(td);
    tr.onclick = () => { state.scope = r.route; render(); };
    tb.appendChild(tr);
  }
}

window.addEventListener('resize', () => render());
poll();
setInterval(poll, POLL_MS);
setInterval(status, 1000);
