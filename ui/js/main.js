// The console's shell: sign-in and sign-out, the hash routes (#/numbers, #/trace/+44…)
// and which view draws the main region, the navigation, and the banner that says when
// the server cannot be reached or refused the token.

import { api, alive, onConnection, onUnauthorized, session } from './api.js';
import * as numbers from './views/numbers.js';
import * as tracer from './views/tracer.js';
import * as zones from './views/zones.js';
import * as importer from './views/import.js';
import * as registrations from './views/registrations.js';
import * as status from './views/status.js';
import { signIn } from './views/signin.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');
const banner = document.getElementById('banner');
const bannerText = document.getElementById('banner-text');

/**
 * Hash routes: pattern → (match, slot) → the view drawing into `slot`, maybe returning
 * a cleanup (the status view's timer).
 */
const routes = [
  [/^#\/numbers$/, (m, slot) => numbers.list(slot, 'number')],
  [/^#\/numbers\/new$/, (m, slot) => numbers.edit(slot, 'number', null)],
  [/^#\/numbers\/(\+[0-9]+)$/, (m, slot) => numbers.edit(slot, 'number', m[1])],
  [/^#\/prefixes$/, (m, slot) => numbers.list(slot, 'prefix')],
  [/^#\/prefixes\/new$/, (m, slot) => numbers.edit(slot, 'prefix', null)],
  [/^#\/prefixes\/(\+[0-9]*)$/, (m, slot) => numbers.edit(slot, 'prefix', m[1])],
  [/^#\/trace(?:\/(.+))?$/, (m, slot) => tracer.show(slot, m[1] ? decoded(m[1]) : '')],
  [/^#\/zones$/, (m, slot) => zones.show(slot)],
  [/^#\/import$/, (m, slot) => importer.show(slot)],
  [/^#\/registrations$/, (m, slot) => registrations.show(slot)],
  [/^#\/status$/, (m, slot) => status.show(slot)],
];

/** A path part as typed: percent-decoded, or as it is when it is not valid encoding. */
function decoded(text) {
  try { return decodeURIComponent(text); } catch { return text; }
}

let cleanup = null;
let drawn = 0;

/**
 * Draws the view the hash names (the numbers list by default) into a fresh slot of
 * `main`: a view still loading when the next one opens draws into its own slot, no
 * longer on the page, and its cleanup runs at once.
 */
async function route() {
  const hash = location.hash;
  const mine = ++drawn;
  if (cleanup) { cleanup(); cleanup = null; }
  // A question the last view asked (Delete …?) is not answered in the next one.
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close('cancel');
  const slot = document.createElement('div');
  main.replaceChildren(slot);
  if (!session.token) {
    showSignedIn(false);
    signIn(slot, (token) => {
      session.set(token);
      if (banner.dataset.kind === 'token') hideBanner();
      showSignedIn(true);
      route();
    });
    return;
  }
  showSignedIn(true);
  for (const [pattern, view] of routes) {
    const m = pattern.exec(hash);
    if (m) {
      markCurrent(hash);
      const done = (await view(m, slot)) || null;
      if (mine === drawn) cleanup = done; else if (done) done();
      return;
    }
  }
  location.replace('#/numbers');
}

/** aria-current on the navigation link of the view shown. */
function markCurrent(hash) {
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href');
    const current = hash === target || hash.startsWith(`${target}/`);
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

function showSignedIn(on) {
  nav.hidden = !on;
  signOutButton.hidden = !on;
  if (on) probeRegistrar();
}

let registrarProbed = false;
/** Shows Registrations in the navigation only when the registrar is on. */
async function probeRegistrar() {
  if (registrarProbed) return;
  registrarProbed = true;
  try {
    await api('GET', '/v1/registrations?limit=1');
    document.getElementById('nav-registrations').hidden = false;
  } catch (e) {
    registrarProbed = e.status === 404;
  }
}

signOutButton.addEventListener('click', () => {
  session.clear();
  registrarProbed = false;
  document.getElementById('nav-registrations').hidden = true;
  location.hash = '#/numbers';
  route();
});

// The banner: shown while the server cannot be reached (checked every 3 s until it
// answers again), or when the token stops being accepted.
let retryTimer = null;
onConnection((ok, error) => {
  if (ok) {
    if (banner.dataset.kind === 'connection') hideBanner();
    return;
  }
  showBanner('connection', `${error.message}. Retrying every 3 seconds; nothing shown here is current until it answers.`);
  if (!retryTimer) {
    retryTimer = setInterval(async () => {
      if (await alive()) { clearInterval(retryTimer); retryTimer = null; }
    }, 3000);
  }
});
onUnauthorized((err) => {
  session.clear();
  showBanner('token', `The server refused the token (${err.message}). Sign in again.`);
  route();
});
document.getElementById('banner-retry').addEventListener('click', async () => {
  if (banner.dataset.kind === 'connection' && await alive()) route();
  else if (banner.dataset.kind !== 'connection') hideBanner();
});

function showBanner(kind, text) {
  banner.dataset.kind = kind;
  bannerText.textContent = text;
  banner.hidden = false;
}

function hideBanner() {
  banner.hidden = true;
  delete banner.dataset.kind;
  if (retryTimer) { clearInterval(retryTimer); retryTimer = null; }
}

// The skip link moves the focus without touching the hash (the hash is the route).
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', route);
route();

