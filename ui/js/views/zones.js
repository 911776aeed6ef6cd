// Zones: each served zone's origin, whether this instance is its primary or a
// secondary, SOA serial, record count, and its last transfer each way since the
// server started (AXFR or IXFR, with whom, when, whether it completed).

import { h, fill, table, when } from '../dom.js';
import { api } from '../api.js';
import { page, errorBox, showError, clearError, statusLine } from './common.js';

export async function show(main) {
  page(main, 'Zones', 'The zones this instance serves. Secondaries check that their serial matches the primary\u2019s; transfers are those seen since this server started.');
  const errors = errorBox('zones-error');
  const status = statusLine('zones-status');
  const refresh = h('button', { type: 'button', class: 'secondary', id: 'zones-refresh' }, 'Refresh');
  const results = h('div', { id: 'zones-table' });
  main.append(h('div', { class: 'buttons' }, refresh), errors, status, results);
  async function load() {
    clearError(errors);
    try {
      const { items } = await api('GET', '/v1/zones');
      status.textContent = `${items.length} ${items.length === 1 ? 'zone' : 'zones'}, read at ${new Date().toLocaleTimeString()}.`;
      fill(results, table('Zones', ['Origin', 'Role', 'Serial', 'Records', 'Last transfer in', 'Last transfer out'],
        items.map((z) => h('tr', { 'data-origin': z.origin },
          h('th', { scope: 'row', class: 'mono' }, z.origin),
          h('td', {}, z.type),
          h('td', { class: 'num' }, String(z.serial)),
          h('td', { class: 'num' }, z.records.toLocaleString()),
          h('td', {}, transfer(z.last_transfer_in, 'from')),
          h('td', {}, transfer(z.last_transfer_out, 'to'))))));
    } catch (err) {
      status.textContent = '';
      showError(errors, err, 'Could not list zones');
    }
  }
  refresh.addEventListener('click', load);
  await load();
}

function transfer(t, dir) {
  if (!t) return h('span', { class: 'muted' }, 'none since start');
  return h('span', { class: t.result === 'ok' ? '' : 'bad' },
    `${t.type.toUpperCase()} ${t.result === 'ok' ? '' : 'failed '}serial ${t.serial}${t.peer ? ` ${dir} ${t.peer}` : ''}, ${when(t.at)}`);
}
