// Numbers and prefix routes: a paged list with a prefix search (the API's cursor: one
// page in memory, never the whole zone), and one number's (or prefix's) routes to
// create, edit or delete, with the API's field errors shown beside each field.

import { h, fill, table, field, confirmDialog } from '../dom.js';
import { api, e164Path } from '../api.js';
import { page, errorBox, showError, clearError, statusLine, keepFocus, routeSummary, cursorPager } from './common.js';

const KINDS = {
  number: {
    title: 'Numbers', one: 'number', api: '/v1/numbers', hash: '#/numbers', key: 'number',
    pathField: 'e164', intro: 'Numbers of the local zones and their routes (NAPTR records). Search by the start of the number; pages follow the API\u2019s cursor.',
  },
  prefix: {
    title: 'Prefix routes', one: 'prefix', api: '/v1/prefixes', hash: '#/prefixes', key: 'prefix',
    pathField: 'e164prefix', intro: 'A prefix route routes every number that starts with it and has no routes of its own; the longest prefix wins.',
  },
};

const PAGE_SIZES = [25, 50, 100, 250];

/** Where each list was left (prefix, page size, the cursors of the pages before). */
const listState = {
  number: { prefix: '', limit: 50, cursors: [null] },
  prefix: { prefix: '', limit: 50, cursors: [null] },
};

/** The paged list. */
export async function list(main, kind) {
  const k = KINDS[kind];
  const st = listState[kind];
  page(main, k.title, k.intro);
  const prefixInput = h('input', { type: 'search', inputmode: 'tel', value: st.prefix, placeholder: '+4416', autocomplete: 'off' });
  const sizeSelect = h('select', {}, PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === st.limit }, String(n))));
  const search = h('form', { class: 'toolbar', role: 'search', 'aria-label': `Search ${k.title.toLowerCase()}` },
    field(`${kind}-search`, 'Starts with', prefixInput),
    field(`${kind}-page-size`, 'Per page', sizeSelect),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit', id: `${kind}-search-button` }, 'Search'),
      h('a', { class: 'button', href: `${k.hash}/new`, id: `new-${kind}` }, `New ${k.one}`)));
  const errors = errorBox(`${kind}-list-error`);
  const status = statusLine(`${kind}-list-status`);
  const results = h('div', { id: `${kind}-results` });
  const pager = cursorPager({
    cursors: st.cursors,
    idPrefix: kind,
    status,
    fetchPage(after) {
      clearError(errors);
      const q = new URLSearchParams({ limit: String(st.limit) });
      if (st.prefix) q.set('prefix', st.prefix);
      if (after) q.set('after', after);
      status.textContent = 'Loading\u2026';
      return api('GET', `${k.api}?${q}`);
    },
    show(body, n) {
      const many = k.one === 'prefix' ? 'prefixes' : 'numbers';
      status.textContent = body.items.length
        ? `Page ${n}: ${body.items.length} ${body.items.length === 1 ? k.one : many}${st.prefix ? ` starting with ${st.prefix}` : ''}${body.next ? '' : ' (last page)'}.`
        : `No ${k.one === 'prefix' ? 'prefix routes' : 'numbers'}${st.prefix ? ` start with ${st.prefix}` : ''}.`;
      fill(results, body.items.length ? rows(body.items) : null);
    },
    fail(err) {
      status.textContent = '';
      showError(errors, err, `Could not list ${k.title.toLowerCase()}`);
    },
  });
  main.append(search, errors, status, results, pager.nav);

  function rows(items) {
    return table(k.title, [k.one === 'prefix' ? 'Prefix' : 'Number', 'Routes', 'TTL', 'Zone', 'Actions'],
      items.map((item) => {
        const id = item[k.key];
        const del = h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${id}` }, 'Delete');
        del.addEventListener('click', async () => {
          if (await remove(kind, id, errors)) {
            await pager.load();
            status.textContent = `Deleted ${id}. ${status.textContent}`;
            status.focus();
          }
        });
        return h('tr', { 'data-id': id },
          h('th', { scope: 'row' }, h('a', { href: `${k.hash}/${id}` }, id)),
          h('td', {}, h('ul', { class: 'plain' }, item.routes.map((r) => h('li', {}, routeSummary(r))))),
          h('td', {}, String(item.ttl)),
          h('td', {}, item.zone),
          h('td', { class: 'actions' },
            h('a', { class: 'button small secondary', href: `${k.hash}/${id}`, 'aria-label': `Edit ${id}` }, 'Edit'),
            kind === 'number' ? h('a', { class: 'button small secondary', href: `#/trace/${encodeURIComponent(id)}`, 'aria-label': `Trace ${id}` }, 'Trace') : null,
            del));
      }));
  }

  search.addEventListener('submit', (e) => {
    e.preventDefault();
    st.prefix = prefixInput.value.replace(/[\s().-]/g, '');
    // Digits alone are the start of an E.164 number.
    if (/^[0-9]/.test(st.prefix)) st.prefix = `+${st.prefix}`;
    st.limit = Number(sizeSelect.value);
    pager.first();
  });
  await pager.load();
}

/** Deletes after confirmation; true when deleted. */
async function remove(kind, id, errors) {
  const k = KINDS[kind];
  const text = kind === 'prefix'
    ? `Numbers under ${id} without routes of their own stop being routed by it at once.`
    : `The routes of ${id} are removed from its zone at once; calls to it get whatever else routes it.`;
  if (!await confirmDialog(`Delete ${id}?`, text, 'Delete')) return false;
  try {
    await api('DELETE', `${k.api}/${e164Path(id)}`);
    return true;
  } catch (err) {
    showError(errors, err, `Could not delete ${id}`);
    return false;
  }
}

/** The kinds of route the form writes, as the API's number body has them. */
const ROUTE_KINDS = [
  ['uri', 'URI (SIP, tel, other)'],
  ['pstn', 'PSTN gateway'],
  ['regexp', 'Raw NAPTR regexp'],
];

function routeKind(r) {
  if (r.pstn) return 'pstn';
  if (r.regexp !== undefined) return 'regexp';
  return 'uri';
}

/** One number (or prefix): create when `id` is null, else edit. */
export async function edit(main, kind, id) {
  const k = KINDS[kind];
  page(main, id ? `${k.one === 'prefix' ? 'Prefix' : 'Number'} ${id}` : `New ${k.one}`);
  const errors = errorBox('edit-error');
  const status = statusLine('edit-status');
  main.append(h('p', {}, h('a', { href: k.hash }, `\u2190 All ${k.title.toLowerCase()}`)), errors, status);
  let body = { ttl: 300, routes: [{ uri: '', order: 100, preference: 10 }] };
  if (id) {
    try {
      body = await api('GET', `${k.api}/${e164Path(id)}`);
    } catch (err) {
      if (err.status !== 404) { showError(errors, err, `Could not read ${id}`); return; }
      status.textContent = `${id} has no routes yet: saving creates it.`;
    }
  }
  main.append(form(kind, id, body, errors, status));
}

function form(kind, id, body, errors, status) {
  const k = KINDS[kind];
  const idInput = h('input', { type: 'text', inputmode: 'tel', value: id || '', required: true, autocomplete: 'off', placeholder: k.one === 'prefix' ? '+4416329' : '+441632960123', readonly: Boolean(id) });
  const ttl = h('input', { type: 'number', min: '0', max: '2147483647', value: String(body.ttl ?? 300), required: true });
  const routesBox = h('div', { id: 'routes', class: 'routes' });
  const saved = h('div', { id: 'saved', class: 'card', hidden: true });
  let routes = body.routes.map((r) => ({ ...r }));

  function drawRoutes() {
    fill(routesBox, routes.map((r, i) => routeFields(r, i, routes.length, {
      remove: () => {
        read();
        routes.splice(i, 1);
        drawRoutes();
        document.getElementById(`route-${Math.min(i, routes.length - 1)}-kind`)?.focus();
      },
      kindChanged: () => { read(); drawRoutes(); document.getElementById(`route-${i}-kind`).focus(); },
    })));
  }

  /** The form's routes as the API takes them. */
  function read() {
    routes = routes.map((_, i) => readRoute(i));
  }

  const addButton = h('button', { type: 'button', class: 'secondary', id: 'add-route' }, 'Add route');
  addButton.addEventListener('click', () => {
    read();
    routes.push({ uri: '', order: 100, preference: 10 });
    drawRoutes();
    document.getElementById(`route-${routes.length - 1}-uri`).focus();
  });
  const save = h('button', { type: 'submit', id: 'save' }, 'Save');
  const f = h('form', { class: 'card', id: 'number-form', novalidate: true },
    field(k.pathField, k.one === 'prefix' ? 'Prefix (E.164)' : 'Number (E.164)', idInput),
    field('ttl', 'TTL (seconds)', ttl),
    h('h2', {}, 'Routes'),
    h('p', { class: 'hint' }, 'Each route is one NAPTR record. Calls use the lowest order first, then the lowest preference.'),
    routesBox,
    h('div', { class: 'buttons' }, addButton, save));
  drawRoutes();

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    read();
    clearFieldErrors(f);
    clearError(errors);
    saved.hidden = true;
    const target = idInput.value.replace(/[\s().-]/g, '');
    if (!target) {
      fieldError(f, k.pathField, `enter the ${k.one} in E.164 form, + then digits`)?.focus();
      return;
    }
    if (ttl.value.trim() === '') {
      fieldError(f, 'ttl', 'enter the TTL in seconds (300 is usual)')?.focus();
      return;
    }
    save.disabled = true;
    status.textContent = 'Saving\u2026';
    try {
      // A new one must not replace routes that exist: a PUT would, whole.
      if (!idInput.readOnly && await exists(`${k.api}/${e164Path(target)}`)) {
        status.textContent = '';
        fieldError(f, k.pathField, `${target} already has routes: open it from the list to edit them`)?.focus();
        return;
      }
      const answer = await api('PUT', `${k.api}/${e164Path(target)}`, {
        body: { ttl: Number(ttl.value), routes: routes.map(clean) },
      });
      status.textContent = `Saved ${answer[k.key]} in zone ${answer.zone}: committed and already served.`;
      showSaved(saved, answer, kind);
      // The address names what is on screen: not if the operator has moved on meanwhile.
      if (!id && f.isConnected) history.replaceState(null, '', `${k.hash}/${answer[k.key]}`);
      idInput.readOnly = true;
    } catch (err) {
      status.textContent = '';
      showError(errors, err, 'Not saved');
      placeFieldErrors(f, err, k.pathField);
    } finally {
      save.disabled = false;
      // An error naming no field leaves the focus on the (disabled) button: the status.
      keepFocus(status);
    }
  });

  const wrap = h('div', {}, f, saved);
  if (id) {
    const del = h('button', { type: 'button', class: 'danger', id: 'delete' }, `Delete ${id}`);
    del.addEventListener('click', async () => {
      if (await remove(kind, id, errors) && del.isConnected) {
        status.textContent = `Deleted ${id}.`;
        location.hash = k.hash;
      }
    });
    wrap.append(h('div', { class: 'buttons' }, del));
  }
  return wrap;
}

/** A route's fields. Ids are route-N-FIELD, the API's errors name routes[N].FIELD. */
function routeFields(r, i, count, { remove, kindChanged }) {
  const kind = routeKind(r);
  const id = (name) => `route-${i}-${name}`;
  const kindSelect = h('select', {}, ROUTE_KINDS.map(([v, label]) => h('option', { value: v, selected: v === kind }, label)));
  kindSelect.addEventListener('change', () => {
    const box = kindSelect.closest('fieldset');
    box.dataset.kind = kindSelect.value;
    kindChanged();
  });
  const text = (name, value, props = {}) => h('input', { type: 'text', value: value ?? '', autocomplete: 'off', spellcheck: 'false', ...props });
  const num = (value) => h('input', { type: 'number', min: '0', max: '65535', value: String(value ?? '') });
  const parts = [field(id('kind'), 'Kind', kindSelect)];
  if (kind === 'uri') {
    parts.push(field(id('uri'), 'URI', text('uri', r.uri, { placeholder: 'sip:alice@pbx.example.net' })));
  } else if (kind === 'pstn') {
    parts.push(field(id('rn'), 'Routing number (rn, optional)', text('rn', r.rn, { placeholder: '+441632000000', inputmode: 'tel' })));
    const npdi = h('input', { type: 'checkbox', checked: Boolean(r.npdi) });
    parts.push(h('div', { class: 'field check', 'data-field': id('npdi') }, npdi, h('label', { for: id('npdi') }, 'npdi (number portability dip done)')));
    npdi.id = id('npdi');
  } else {
    parts.push(field(id('regexp'), 'Regexp', text('regexp', r.regexp, { placeholder: '!^\\+44(.*)$!sip:\\1@pbx.example.net!' })));
  }
  parts.push(
    field(id('order'), 'Order', num(r.order ?? 100)),
    field(id('preference'), 'Preference', num(r.preference ?? 10)),
    field(id('service'), 'Service (optional)', text('service', r.service, { placeholder: kind === 'regexp' ? 'E2U+sip' : 'from the scheme' })),
    field(id('flags'), 'Flags', h('select', {},
      h('option', { value: 'u', selected: (r.flags ?? 'u') === 'u' }, 'u: terminal (the result is the URI)'),
      h('option', { value: '', selected: r.flags === '' }, 'none: non-terminal (leads to another name)'),
      // Other flags (U, s, a, p) are kept as they are stored, never rewritten to u.
      r.flags && r.flags !== 'u' ? h('option', { value: r.flags, selected: true }, `${r.flags}: as stored`) : null)),
  );
  const removeButton = h('button', { type: 'button', class: 'secondary small', id: id('remove'), disabled: count <= 1 }, `Remove route ${i + 1}`);
  removeButton.addEventListener('click', remove);
  return h('fieldset', { class: 'route', 'data-kind': kind, 'data-field': `route-${i}` },
    h('legend', {}, `Route ${i + 1}`), h('div', { class: 'grid' }, parts), removeButton);
}

/** Route N as the form holds it. */
function readRoute(i) {
  const get = (name) => document.getElementById(`route-${i}-${name}`);
  const val = (name) => get(name)?.value.trim() ?? '';
  const kind = val('kind');
  const r = {};
  if (kind === 'pstn') {
    r.pstn = true;
    if (val('rn')) r.rn = val('rn');
    if (get('npdi')?.checked) r.npdi = true;
  } else if (kind === 'regexp') {
    r.regexp = val('regexp');
  } else {
    r.uri = val('uri');
  }
  for (const name of ['order', 'preference']) {
    if (val(name) !== '') r[name] = Number(val(name));
  }
  if (val('service') !== '') r.service = val('service');
  // `u` is what the API writes when flags are left out; any other (none included) is said.
  if (get('flags') && val('flags') !== 'u') r.flags = val('flags');
  return r;
}

/** Drops empty optional fields (empty flags say "non-terminal" and stay). */
function clean(r) {
  return Object.fromEntries(Object.entries(r).filter(([k, v]) => v !== undefined && (v !== '' || k === 'flags')));
}

/** Whether the API has something at `path` (a 404 says no; other errors are thrown). */
async function exists(path) {
  try {
    await api('GET', path);
    return true;
  } catch (err) {
    if (err.status === 404) return false;
    throw err;
  }
}



/** The API's field name → the form control's id. */
function controlId(field, pathField) {
  const m = /^routes\[(\d+)\](?:\.(\w+))?/.exec(field);
  if (m) return m[2] ? `route-${m[1]}-${m[2] === 'pstn' ? 'kind' : m[2]}` : `route-${m[1]}`;
  if (field === 'routes') return 'routes';
  if (field === 'number' || field === 'prefix' || field === pathField) return pathField;
  if (field === 'ttl') return 'ttl';
  return null;
}

/** Puts each of the problem's field errors beside its field; focuses the first. */
function placeFieldErrors(form, err, pathField) {
  const fields = err.errors?.length ? err.errors : [];
  let first = null;
  for (const e of fields) {
    const target = controlId(e.field, pathField);
    const el = target && fieldError(form, target, e.detail);
    if (el && !first) first = el;
  }
  first?.focus();
}

/** Marks the control (or group) `id` invalid with `detail` under it. */
function fieldError(form, id, detail) {
  const box = form.querySelector(`[data-field="${id}"]`) || (id === 'routes' ? form.querySelector('#routes') : null);
  if (!box) return null;
  const errId = `${id}-error`;
  const msg = h('p', { class: 'field-error', id: errId }, detail);
  box.append(msg);
  const control = document.getElementById(id);
  if (control && control.matches('input, select, textarea')) {
    control.setAttribute('aria-invalid', 'true');
    const described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    control.setAttribute('aria-describedby', [...described, errId].join(' '));
    return control;
  }
  return box.querySelector('input, select');
}

function clearFieldErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const kept = (el.getAttribute('aria-describedby') || '').split(' ').filter((d) => d && !d.endsWith('-error'));
    if (kept.length) el.setAttribute('aria-describedby', kept.join(' ')); else el.removeAttribute('aria-describedby');
  }
}

/** The stored body: the NAPTR records written, and any warnings. */
function showSaved(box, answer, kind) {
  const k = KINDS[kind];
  const id = answer[k.key];
  fill(box,
    h('h2', {}, 'Records in the zone'),
    h('ul', { class: 'plain mono', id: 'saved-naptr' }, answer.naptr.map((n) => h('li', {}, `NAPTR ${n}`))),
    answer.warnings?.length ? h('ul', { class: 'warnings' }, answer.warnings.map((w) => h('li', {}, w))) : null,
    h('p', {}, kind === 'number' ? h('a', { href: `#/trace/${encodeURIComponent(id)}` }, `Trace ${id}`) : null));
  box.hidden = false;
}
