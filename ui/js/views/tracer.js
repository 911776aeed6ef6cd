// The route tracer: one number (as dialled, or a sip:/tel: URI) → the decision the
// redirect server would answer (status, contacts with q) and every step that led to
// it, as a timeline: the dial plan, the registrar, the cache, each NAPTR lookup (which
// suffix, asked of which zone or server, what came back), each record used or skipped.

import { h, fill, table } from '../dom.js';
import { api } from '../api.js';
import { page, errorBox, showError, clearError, statusLine } from './common.js';

export async function show(main, initial) {
  page(main, 'Route tracer', 'What the redirect server answers for a number, and why. Decided by the running server with its cache, as an INVITE would be.');
  const input = h('input', { type: 'text', value: initial, required: true, autocomplete: 'off', spellcheck: 'false', placeholder: '+441632960001, 01632 960001 or sip:+44\u2026@host' });
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Trace a number' },
    h('div', { class: 'field grow' }, h('label', { for: 'trace-input' }, 'Number or URI'), input),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', id: 'trace-button' }, 'Trace')));
  input.id = 'trace-input';
  const errors = errorBox('trace-error');
  const status = statusLine('trace-status');
  const result = h('section', { id: 'trace-result', 'aria-label': 'Decision' });
  main.append(form, errors, status, result);

  // Traces can answer out of order: only the last one asked for is drawn.
  let asked = 0;
  async function trace(text) {
    const mine = ++asked;
    clearError(errors);
    fill(result);
    status.textContent = `Tracing ${text}\u2026`;
    try {
      const d = await api('GET', `/v1/route/${encodeURIComponent(text)}`);
      if (mine !== asked) return;
      status.textContent = `Traced ${text}.`;
      fill(result, decision(d));
    } catch (err) {
      if (mine !== asked) return;
      status.textContent = '';
      showError(errors, err, `Could not trace ${text}`);
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    history.replaceState(null, '', `#/trace/${encodeURIComponent(text)}`);
    trace(text);
  });
  if (initial) await trace(initial);
  else input.focus();
}

function decision(d) {
  const good = d.status === 302;
  return [
    h('h2', { id: 'trace-status-code', class: good ? 'ok' : 'bad' }, `${d.status} ${d.reason}`),
    h('p', { id: 'trace-detail' }, d.detail),
    h('dl', { class: 'facts' },
      fact('Number', d.number ?? 'not a number'),
      fact('Source', d.source),
      d.zone ? fact('Zone', d.zone) : null,
      d.suffix ? fact('Suffix', d.suffix) : null,
      fact('Holds for', `${d.ttl} s`)),
    h('h3', {}, 'Contacts'),
    d.contacts.length
      ? h('div', { id: 'trace-contacts' }, table('Contacts', ['URI', 'q'],
        d.contacts.map((c) => h('tr', {}, h('td', { class: 'mono' }, c.uri), h('td', {}, qText(c.q))))))
      : h('p', { id: 'trace-contacts' }, 'No contacts.'),
    h('h3', {}, 'Trace'),
    h('ol', { class: 'timeline', id: 'trace-steps' }, d.trace.map(step)),
  ];
}

/** q as SIP writes it: one decimal at least (1.0, 0.9), more when it has them (0.75). */
function qText(q) {
  const t = Math.round(q * 1000);
  return q.toFixed(t % 100 === 0 ? 1 : t % 10 === 0 ? 2 : 3);
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** One trace step as a line of the timeline: a label, a sentence, its details. */
function step(t) {
  const item = (label, kind, ...body) => h('li', { class: `step step-${kind}`, 'data-step': t.step },
    h('span', { class: 'step-label' }, label), h('div', { class: 'step-body' }, body));
  switch (t.step) {
    case 'number':
      return item('Dial plan', 'info',
        `\u201c${t.dialled}\u201d${t.scheme ? ` (${t.scheme}: URI)` : ''} \u2192 ${t.result}`,
        t.rule !== null && t.rule !== undefined ? ` by dial-plan rule ${t.rule}` : '');
    case 'registrar':
      return item('Registrar', 'ok', `${t.aor}: ${t.contacts} live ${t.contacts === 1 ? 'binding' : 'bindings'}`);
    case 'cache':
      return item('Cache', t.result === 'hit' ? 'ok' : 'info',
        t.result === 'hit' ? `hit: cached upstream answers, ${t.ttl ?? 0} s left` : 'miss: upstream asked');
    case 'lookup':
      return item(`Lookup (${t.via})`, lookupKind(t.result),
        h('p', {}, 'NAPTR ', h('code', {}, t.domain)),
        h('dl', { class: 'facts small' },
          fact('Suffix', t.suffix),
          fact('Asked', t.via === 'local' ? `local zone ${t.zone ?? '(none)'}` : `upstream ${t.note && t.result !== 'not_queried' ? t.note : 'ENUM servers'}`),
          fact('Came back', `${t.result.replace('_', ' ')}${t.ttl !== null && t.ttl !== undefined ? `, TTL ${t.ttl} s` : ''}`)),
        t.records.length ? h('ul', { class: 'plain mono' }, t.records.map((r) => h('li', {}, r))) : null,
        t.note && (t.via === 'local' || t.result === 'not_queried') ? h('p', { class: 'hint' }, t.note) : null);
    case 'record':
      return item(t.outcome === 'used' ? 'Record used' : 'Record skipped', t.outcome === 'used' ? 'ok' : 'skip',
        h('code', {}, t.naptr),
        h('p', {}, t.outcome === 'used' ? `\u2192 ${t.detail}` : `${t.outcome.replaceAll('_', ' ')}${t.detail ? `: ${t.detail}` : ''}`),
        t.depth ? h('p', { class: 'hint' }, `followed ${t.depth} non-terminal ${t.depth === 1 ? 'record' : 'records'}`) : null);
    case 'gateway':
      return item('Gateway', 'ok', `prefix ${t.prefix || '(any)'}: ${t.uris.join(', ')}`);
    case 'truncated':
      return item('Truncated', 'skip', `sip.max_contacts kept ${t.kept} contacts, dropped ${t.dropped}`);
    default:
      return item(t.step, 'info', h('code', {}, JSON.stringify(t)));
  }
}

function lookupKind(result) {
  if (result === 'answer' || result === 'wildcard') return 'ok';
  if (['timeout', 'servfail', 'refused', 'error'].includes(result)) return 'bad';
  return 'info';
}
