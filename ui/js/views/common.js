// What every view shares: its heading (focused when the view opens, so keyboard and
// screen-reader users land on it), the alert box for API errors, and status lines.

import { h, fill } from '../dom.js';
import { ApiError } from '../api.js';

/** Starts a view: clears `main`, sets the title and the focused heading. */
export function page(main, title, ...intro) {
  document.title = `${title} · enroute console`;
  const heading = h('h1', { tabindex: '-1', id: 'view-title' }, title);
  fill(main, heading, intro.length ? h('p', { class: 'intro' }, intro) : null);
  heading.focus();
  return heading;
}

/** A box that shows an API error (role=alert, empty and hidden until then). */
export function errorBox(id) {
  return h('div', { class: 'error-box', role: 'alert', id, hidden: true });
}

/** Shows `err` in `box`: the status and the problem's detail, or the connection failure. */
export function showError(box, err, lead) {
  const lines = [];
  if (err instanceof ApiError) {
    lines.push(h('strong', {}, `${lead ? `${lead}: ` : ''}${err.status} ${err.title}`), ' ', err.detail);
    if (err.errors.length) {
      lines.push(h('ul', {}, err.errors.map((e) => h('li', {},
        e.line ? `line ${e.line}: ` : '', e.field ? h('code', {}, e.field) : null, e.field ? ': ' : '', e.detail))));
      if (err.total > err.errors.length) lines.push(h('p', {}, `${err.total} errors in all; the first ${err.errors.length} are listed.`));
    }
  } else {
    lines.push(h('strong', {}, lead || 'Error'), ' ', err.message || String(err));
  }
  fill(box, lines);
  box.hidden = false;
}

export function clearError(box) {
  fill(box);
  box.hidden = true;
}

/** A polite status line (screen readers announce its changes). */
export function statusLine(id) {
  // Focusable from script: it takes the focus when an action removed what had it.
  return h('p', { class: 'status-line', role: 'status', id, tabindex: '-1' });
}

/** Short text for a route of a number body. */
export function routeSummary(r) {
  if (r.pstn) return `PSTN gateway${r.rn ? `, rn ${r.rn}` : ''}${r.npdi ? ', npdi' : ''}`;
  if (r.uri) return r.uri;
  return `${r.service || ''} ${r.regexp || ''}`.trim();
}

/** After a redraw took the focused control away (or disabled it), the status line. */
export function keepFocus(status) {
  const active = document.activeElement;
  if (!active || active === document.body || active.disabled || !active.isConnected) status.focus();
}

/**
 * Previous and next pages over the API's cursor. `cursors` holds the `after` of each
 * page up to the one shown (`null` for the first), so Previous needs no request of its
 * own. `fetchPage(after)` resolves to the API's `{items, next}`, `show(body, pageNo)`
 * draws it, `fail(err)` says why not. The buttons are off while a page loads, and an
 * answer to an older request is dropped, so quick clicks cannot skip or repeat a page.
 */
export function cursorPager({ cursors, idPrefix, status, fetchPage, show, fail }) {
  const prev = h('button', { type: 'button', class: 'secondary', id: idPrefix && `${idPrefix}-prev` }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary', id: idPrefix && `${idPrefix}-next` }, 'Next page');
  let nextCursor = null;
  let asked = 0;
  async function load() {
    const mine = ++asked;
    prev.disabled = true;
    next.disabled = true;
    try {
      const body = await fetchPage(cursors[cursors.length - 1]);
      if (mine !== asked) return;
      nextCursor = body.next;
      show(body, cursors.length);
    } catch (err) {
      if (mine !== asked) return;
      nextCursor = null;
      fail(err);
    }
    prev.disabled = cursors.length <= 1;
    next.disabled = !nextCursor;
    keepFocus(status);
  }
  prev.addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  next.addEventListener('click', () => {
    if (nextCursor) { cursors.push(nextCursor); nextCursor = null; load(); }
  });
  return {
    nav: h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, next),
    load,
    /** Back to the first page (a new search), loaded. */
    first() { cursors.length = 1; return load(); },
  };
}
