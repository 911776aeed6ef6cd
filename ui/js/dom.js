// Building the page without HTML strings: every text goes in as a text node, so nothing
// the API returns (a URI, a problem's detail) can become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

/** An HTML element: h('a', {href: '#/x'}, 'text', child, [more]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element (charts). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A table inside a region that scrolls sideways when it must (keyboard too). Each cell
 * carries its column's name, which a narrow window shows beside it, one row a card.
 */
export function table(label, headers, rows) {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute('data-label', headers[i] ?? ''));
  }
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

/** A labelled input: the label, the control, and a place for its error. */
export function field(id, label, control, hint) {
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field', 'data-field': id },
    h('label', { for: id }, label), control, hintEl);
}

/** Asks for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, text),
      h('form', { method: 'dialog', class: 'buttons' },
        h('button', { type: 'submit', value: 'cancel', class: 'secondary', id: 'confirm-cancel' }, 'Cancel'),
        h('button', { type: 'submit', value: 'ok', class: 'danger', id: 'confirm-ok' }, action)));
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok';
      dlg.remove();
      resolve(ok);
    });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('#confirm-cancel').focus();
  });
}

/** A time as the operator reads it: local date and time, seconds included. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
