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

/** Hash routes: pattern → (match) → view drawing into `main`, maybe returning a cleanup. */
const routes = [
  [/^#\/numbers$/, () => numbers.list(main, 'number')],
  [/^#\/numbers\/new$/, () => numbers.edit(main, 'number', null)],
  [/^#\/numbers\/(\+[0-9]+)$/, (m) => numbers.edit(main, 'number', m[1])],
  [/^#\/prefixes$/, () => numbers.list(main, 'prefix')],
  [/^#\/prefixes\/new$/, () => numbers.edit(main, 'prefix', null)],
  [/^#\/prefixes\/(\+[0-9]*)$/, (m) => numbers.edit(main, 'prefix', m[1])],
  [/^#\/trace(?:\/(.+))?$/, (m) => tracer.show(main, m[1] ? decodeURIComponent(m[1]) : '')],
  [/^#\/zones$/, () => zones.show(main)],
  [/^#\/import$/, () => importer.show(main)],
  [/^#\/registrations$/, () => registrations.show(main)],
  [/^#\/status$/, () => status.show(main)],
];

let cleanup = null;

/** Draws the view the hash names (the numbers list by default). */
async function route() {
  const hash = location.hash;
  // In-page anchors (the skip link) are not routes.
  if (hash && !hash.startsWith('#/')) return;
  if (cleanup) { cleanup(); cleanup = null; }
  if (!session.token) {
    showSignedIn(false);
    signIn(main, (token) => { session.set(token); showSignedIn(true); route(); });
    return;
  }
  showSignedIn(true);
  for (const [pattern, view] of routes) {
    const m = pattern.exec(hash);
    if (m) {
      markCurrent(hash);
      cleanup = (await view(m)) || null;
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

window.addEventListener('hashchange', route);
route();

