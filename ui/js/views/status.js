// Status: what the server is doing, read from /metrics every few seconds: calls per
// second, routing decisions by outcome, the cache hit ratio, upstream ENUM failures,
// DNS queries, and registrations when the registrar is on, each with a small chart of
// the last minutes. Rates are the difference between two reads.

import { h, s, fill } from '../dom.js';
import { metricsText } from '../api.js';
import { parse, sum, byLabel } from '../metrics.js';
import { page, errorBox, showError, clearError } from './common.js';

const EVERY_MS = 5000;
const KEEP = 60;
const FAILURES = new Set(['timeout', 'servfail', 'refused', 'error']);
const OUTCOMES = ['redirect', 'not_found', 'incomplete', 'unsupported_scheme', 'unavailable', 'other'];

/** The figures of one read of /metrics. */
function figures(samples, at) {
  const decisions = byLabel(samples, 'enroute_route_decisions_total', 'outcome');
  return {
    at,
    invites: sum(samples, 'enroute_sip_requests_total', (l) => l.method === 'INVITE') ?? 0,
    decisions,
    decisionsTotal: Object.values(decisions).reduce((a, b) => a + b, 0),
    hits: sum(samples, 'enroute_cache_hits_total') ?? 0,
    misses: sum(samples, 'enroute_cache_misses_total') ?? 0,
    failures: sum(samples, 'enroute_enum_lookups_total', (l) => FAILURES.has(l.result)) ?? 0,
    failuresBy: Object.fromEntries(Object.entries(
      byLabel(samples.filter((x) => FAILURES.has(x.labels.result)), 'enroute_enum_lookups_total', 'result'),
    ).filter(([, n]) => n > 0)),
    lookups: sum(samples, 'enroute_enum_lookups_total') ?? 0,
    dns: sum(samples, 'enroute_dns_queries_total') ?? 0,
    bindings: sum(samples, 'enroute_registrar_bindings'),
    aors: sum(samples, 'enroute_registrar_aors'),
  };
}

export function show(main) {
  page(main, 'Status', `Read from /metrics every ${EVERY_MS / 1000} seconds while this view is open; rates are over the last interval.`);
  const errors = errorBox('status-error');
  // Not a live region: a line that changes every few seconds would be read out each time.
  const status = h('p', { class: 'status-line', id: 'status-updated' });
  const now = h('button', { type: 'button', class: 'secondary', id: 'status-refresh' }, 'Read now');
  const tiles = h('div', { class: 'tiles', id: 'status-tiles' });
  main.append(h('div', { class: 'buttons' }, now), errors, status, tiles);
  const history = [];
  let stopped = false;
  let reading = false;

  async function read() {
    // A slow server must not pile reads up: the next tick skips while one is out.
    if (reading) return;
    reading = true;
    let text;
    try {
      text = await metricsText();
    } catch (err) {
      if (stopped) return;
      const last = history.at(-1);
      status.textContent = last ? `Not current: last read at ${new Date(last.at).toLocaleTimeString()}.` : '';
      showError(errors, err, 'Could not read /metrics');
      return;
    } finally {
      reading = false;
    }
    if (stopped) return;
    clearError(errors);
    if (text === null) {
      fill(tiles, h('p', {}, 'Metrics are off on this server (metrics.enabled = false).'));
      return;
    }
    history.push(figures(parse(text), Date.now()));
    if (history.length > KEEP) history.shift();
    status.textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
    draw();
  }

  function draw() {
    const now = history.at(-1);
    const before = history.at(-2);
    const secs = before ? (now.at - before.at) / 1000 : 0;
    const rate = (f) => (before && secs > 0 ? Math.max(0, (f(now) - f(before)) / secs) : null);
    const series = (f) => history.slice(1).map((x, i) => {
      const dt = (x.at - history[i].at) / 1000;
      return dt > 0 ? Math.max(0, (f(x) - f(history[i])) / dt) : 0;
    });
    const ratioOf = (a, b) => {
      const hits = a.hits - (b ? b.hits : 0);
      const all = hits + a.misses - (b ? b.misses : 0);
      return all > 0 ? hits / all : null;
    };
    const sinceStart = ratioOf(now, null);
    const windowRatio = before ? ratioOf(now, before) : null;
    const ratioSeries = history.slice(1).map((x, i) => ratioOf(x, history[i]) ?? sinceStart ?? 0);
    const calls = rate((x) => x.invites);
    const failRate = rate((x) => x.failures);
    fill(tiles,
      tile('calls', 'Calls per second', fmt(calls, 1), `${now.invites.toLocaleString()} ${now.invites === 1 ? 'INVITE' : 'INVITEs'} since start`,
        chart(series((x) => x.invites), 'Calls per second')),
      decisionsTile(now, rate),
      tile('cache', 'Cache hit ratio', windowRatio !== null ? pct(windowRatio) : (sinceStart !== null ? pct(sinceStart) : '\u2014'),
        sinceStart === null ? 'no decision has needed upstream ENUM yet' : `${pct(sinceStart)} since start (${plural(now.hits, 'hit')}, ${plural(now.misses, 'miss', 'misses')})`,
        chart(ratioSeries, 'Cache hit ratio', 1)),
      tile('upstream', 'Upstream failures per second', fmt(failRate, 2),
        `${now.failures.toLocaleString()} failed of ${now.lookups.toLocaleString()} upstream lookups since start${Object.keys(now.failuresBy).length ? ` (${Object.entries(now.failuresBy).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
        chart(series((x) => x.failures), 'Upstream failures per second')),
      tile('dns', 'DNS queries per second', fmt(rate((x) => x.dns), 1), `${now.dns.toLocaleString()} answered since start`,
        chart(series((x) => x.dns), 'DNS queries per second')),
      now.bindings !== null ? tile('registrar', 'Registrations', `${now.aors.toLocaleString()} AORs`, `${now.bindings.toLocaleString()} bindings held`, null) : null);
  }

  now.addEventListener('click', read);
  read();
  const timer = setInterval(read, EVERY_MS);
  return () => { stopped = true; clearInterval(timer); };
}

function tile(id, title, value, detail, graph) {
  return h('section', { class: 'tile', id: `tile-${id}`, 'aria-labelledby': `tile-${id}-title` },
    h('h2', { id: `tile-${id}-title` }, title),
    h('p', { class: 'big', id: `${id}-value` }, value),
    h('p', { class: 'hint', id: `${id}-detail` }, detail),
    graph);
}

/** Decisions by outcome: totals as bars, with the rate of each. */
function decisionsTile(now, rate) {
  const max = Math.max(1, ...OUTCOMES.map((o) => now.decisions[o] ?? 0));
  const rows = OUTCOMES.filter((o) => o === 'redirect' || (now.decisions[o] ?? 0) > 0).map((o) => {
    const n = now.decisions[o] ?? 0;
    const r = rate((x) => x.decisions[o] ?? 0);
    return h('div', { class: 'bar-row' },
      h('span', { class: 'bar-label' }, o.replace('_', ' ')),
      s('svg', { class: 'bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
        s('rect', { x: 0, y: 0, width: Math.max(0.5, (n / max) * 100), height: 10, class: o === 'redirect' ? 'bar-ok' : 'bar-other' })),
      h('span', { class: 'bar-value', id: `decisions-${o}` }, n.toLocaleString()),
      h('span', { class: 'bar-rate' }, r === null ? '' : `${fmt(r, 1)}/s`));
  });
  return h('section', { class: 'tile wide', id: 'tile-decisions', 'aria-labelledby': 'tile-decisions-title' },
    h('h2', { id: 'tile-decisions-title' }, 'Decisions by outcome'),
    h('p', { class: 'big', id: 'decisions-value' }, now.decisionsTotal.toLocaleString()),
    h('p', { class: 'hint' }, 'routing decisions since start, from SIP and the API'),
    h('div', { class: 'bars', role: 'list' }, rows.map((r) => { r.setAttribute('role', 'listitem'); return r; })));
}

/** A small line chart of `values` (the last minutes), described for screen readers. */
function chart(values, label, fixedMax) {
  const w = 200;
  const hgt = 40;
  if (values.length < 2) {
    return h('p', { class: 'hint chart-empty' }, 'The chart starts after two reads.');
  }
  const max = fixedMax ?? Math.max(...values, 0.001);
  const step = w / (KEEP - 2);
  const x0 = w - step * (values.length - 1);
  const points = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(hgt - (v / max) * (hgt - 2) - 1).toFixed(1)}`).join(' ');
  const last = values.at(-1);
  const area = `${x0.toFixed(1)},${hgt} ${points} ${w},${hgt}`;
  return s('svg', { class: 'chart', viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${label}, last ${Math.round((values.length * EVERY_MS) / 60000) || 1} min: now ${fmt(last, 2)}, highest ${fmt(Math.max(...values), 2)}` },
    s('rect', { x: 0, y: 0, width: w, height: hgt, class: 'chart-bg' }),
    s('polygon', { points: area, class: 'chart-area' }),
    s('polyline', { points, fill: 'none', class: 'chart-line' }));
}

function fmt(v, digits) {
  return v === null || v === undefined ? '\u2014' : v.toFixed(digits);
}

function plural(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

function pct(r) {
  return `${(r * 100).toFixed(1)}%`;
}
