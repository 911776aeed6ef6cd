// Registrations (when the registrar is on): the live bindings of each AOR, paged with
// the API's cursor or one AOR looked up, and a way to remove an AOR's bindings.

import { h, fill, table, field, confirmDialog } from '../dom.js';
import { api } from '../api.js';
import { page, errorBox, showError, clearError, statusLine } from './common.js';

export async function show(main) {
  page(main, 'Registrations', 'User agents registered with this server\u2019s registrar, by address of record. Calls to an AOR go to its bindings first, best q first.');
  const aorInput = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'alice@example.net or +441632960001' });
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Find an AOR' },
    field('aor-search', 'AOR (empty: all)', aorInput),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Show')));
  const errors = errorBox('registrations-error');
  const status = statusLine('registrations-status');
  const results = h('div', { id: 'registrations-table' });
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next page');
  main.append(form, errors, status, results, h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, next));
  const cursors = [null];
  let nextCursor = null;
  let aor = '';
  let asked = 0;

  /** Loads the page (or the AOR) asked for; an answer to an older request is dropped. */
  async function load() {
    const mine = ++asked;
    prev.disabled = true;
    next.disabled = true;
    clearError(errors);
    const q = new URLSearchParams({ limit: '50' });
    if (aor) q.set('aor', aor);
    const after = cursors[cursors.length - 1];
    if (after && !aor) q.set('after', after);
    try {
      const body = await api('GET', `/v1/registrations?${q}`);
      if (mine !== asked) return;
      nextCursor = aor ? null : body.next;
      status.textContent = body.items.length
        ? `${body.items.length} ${body.items.length === 1 ? 'AOR' : 'AORs'} with live bindings${aor ? '' : ` (page ${cursors.length})`}.`
        : (aor ? `${aor} has no live bindings.` : 'No AOR has a live binding.');
      fill(results, body.items.length ? table('Registrations', ['AOR', 'Contacts (q, expires in)', 'Actions'],
        body.items.map((r) => {
          const del = h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove the bindings of ${r.aor}` }, 'Remove bindings');
          del.addEventListener('click', async () => {
            if (!await confirmDialog(`Remove the bindings of ${r.aor}?`, 'Calls to it stop reaching its user agents until they register again.', 'Remove')) return;
            try {
              await api('DELETE', `/v1/registrations/${encodeURIComponent(r.aor)}`);
              await load();
              status.textContent = `Removed the bindings of ${r.aor}. ${status.textContent}`;
              status.focus();
            } catch (err) {
              showError(errors, err, `Could not remove the bindings of ${r.aor}`);
            }
          });
          return h('tr', {},
            h('th', { scope: 'row', class: 'mono' }, r.aor),
            h('td', {}, h('ul', { class: 'plain' }, r.contacts.map((c) => h('li', {},
              h('span', { class: 'mono' }, c.uri), ` q=${c.q}, ${c.expires} s`)))),
            h('td', { class: 'actions' }, del));
        })) : null);
    } catch (err) {
      if (mine !== asked) return;
      status.textContent = '';
      nextCursor = null;
      if (err.status === 404 && !aor) {
        fill(results, h('p', {}, 'The registrar is off on this server (registrar.enabled = false).'));
      } else {
        showError(errors, err, 'Could not list registrations');
      }
    }
    prev.disabled = aor !== '' || cursors.length <= 1;
    next.disabled = !nextCursor;
    const active = document.activeElement;
    if (!active || active === document.body || active.disabled || !active.isConnected) status.focus();
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    aor = aorInput.value.trim();
    cursors.length = 1;
    load();
  });
  prev.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  next.addEventListener('click', () => {
    if (nextCursor) { cursors.push(nextCursor); nextCursor = null; load(); }
  });
  await load();
}
