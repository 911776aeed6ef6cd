// Registrations (when the registrar is on): the live bindings of each AOR, paged with
// the API's cursor or one AOR looked up, and a way to remove an AOR's bindings.

import { h, fill, table, field, confirmDialog } from '../dom.js';
import { api } from '../api.js';
import { page, errorBox, showError, clearError, statusLine, cursorPager } from './common.js';

export async function show(main) {
  page(main, 'Registrations', 'User agents registered with this server\u2019s registrar, by address of record. Calls to an AOR go to its bindings first, best q first.');
  const aorInput = h('input', { type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'alice@example.net or +441632960001' });
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Find an AOR' },
    field('aor-search', 'AOR (empty: all)', aorInput),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Show')));
  const errors = errorBox('registrations-error');
  const status = statusLine('registrations-status');
  const results = h('div', { id: 'registrations-table' });
  let aor = '';
  const pager = cursorPager({
    cursors: [null],
    status,
    async fetchPage(after) {
      clearError(errors);
      const q = new URLSearchParams({ limit: '50' });
      // One AOR is one answer: no pages.
      if (aor) q.set('aor', aor);
      else if (after) q.set('after', after);
      const body = await api('GET', `/v1/registrations?${q}`);
      return aor ? { ...body, next: null } : body;
    },
    show,
    fail(err) {
      status.textContent = '';
      if (err.status === 404 && !aor) {
        fill(results, h('p', {}, 'The registrar is off on this server (registrar.enabled = false).'));
      } else {
        showError(errors, err, 'Could not list registrations');
      }
    },
  });
  main.append(form, errors, status, results, pager.nav);

  function show(body, n) {
    status.textContent = body.items.length
      ? `${body.items.length} ${body.items.length === 1 ? 'AOR' : 'AORs'} with live bindings${aor ? '' : ` (page ${n})`}.`
      : (aor ? `${aor} has no live bindings.` : 'No AOR has a live binding.');
    fill(results, body.items.length ? table('Registrations', ['AOR', 'Contacts (q, expires in)', 'Actions'],
      body.items.map((r) => {
        const del = h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove the bindings of ${r.aor}` }, 'Remove bindings');
        del.addEventListener('click', async () => {
          if (!await confirmDialog(`Remove the bindings of ${r.aor}?`, 'Calls to it stop reaching its user agents until they register again.', 'Remove')) return;
          try {
            await api('DELETE', `/v1/registrations/${encodeURIComponent(r.aor)}`);
            await pager.load();
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
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    aor = aorInput.value.trim();
    pager.first();
  });
  await pager.load();
}
