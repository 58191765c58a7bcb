// The dashboard shell: sign-in, hash routes, and live refresh of the current page from
// GET /api/events (any build or deployment change makes the page fetch the truth again).
import { api, session, onUnauthorized, streamEvents, parseData } from './api.js';
import { h, fill, errorBox, announce } from './dom.js';
import { loadOrReload } from './boot.js';

// Pages load when first visited: the rules editor brings the YAML parser, which the other
// pages do not need.
const lazy = (file, name) => () => loadOrReload(() => import(file), 'this page').then((m) => m[name]);
const routes = [
  [/^\/?$/, lazy('./pages/repos.js', 'reposPage')],
  [/^\/builds$/, lazy('./pages/builds.js', 'buildsPage')],
  [/^\/builds\/(?<id>[^/]+)$/, lazy('./pages/build.js', 'buildPage')],
  [/^\/rules\/new$/, lazy('./pages/rules.js', 'rulesPage')],
  [/^\/repos\/(?<owner>[^/]+)\/(?<name>[^/]+)\/rules$/, lazy('./pages/rules.js', 'rulesPage')],
  [/^\/repos\/(?<owner>[^/]+)\/(?<name>[^/]+)\/settings$/, lazy('./pages/settings.js', 'settingsPage')],
  [/^\/repos\/(?<owner>[^/]+)\/(?<name>[^/]+)\/environments\/(?<env>[^/]+)$/, lazy('./pages/environment.js', 'environmentPage')],
  [/^\/audit$/, lazy('./pages/audit.js', 'auditPage')],
  [/^\/tokens$/, lazy('./pages/tokens.js', 'tokensPage')],
];

const main = document.getElementById('main');
const ctx = { me: null, live: 'connecting' };
let current = null; // { page, controller }
let events = null; // AbortController of the /api/events stream

function currentRoute() {
  const path = decodeURI(location.hash.replace(/^#/, '').split('?')[0]);
  for (const [re, load] of routes) {
    const m = re.exec(path);
    if (m) return { load, params: Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)])) };
  }
  return null;
}

async function render() {
  current?.controller.abort();
  current = null;
  if (!ctx.me) return showSignIn();
  const route = currentRoute();
  if (!route) {
    fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/' }, 'Go to the repositories.')));
    return;
  }
  const controller = new AbortController();
  current = { page: null, controller };
  let create;
  try {
    create = await route.load();
  } catch {
    return; // loadOrReload reloads the page or says what failed
  }
  if (controller.signal.aborted) return;
  const page = create({ params: route.params, ctx, signal: controller.signal });
  current = { page, controller };
  fill(main, page.element);
  document.title = `${page.title ?? 'slipway'} · slipway`;
  await refresh(page);
}

async function refresh(page) {
  try {
    await page.refresh();
  } catch (err) {
    if (err?.name === 'AbortError') return;
    if (page.showError) page.showError(err);
    else main.append(errorBox(err));
  }
}

// Many events arrive in bursts (a build's state changes, then its deployment's): coalesce them.
let refreshTimer = null;
function scheduleRefresh(event) {
  if (!current?.page || current.page.onEvent?.(event) === false) return;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (current?.page) refresh(current.page); }, 150);
}

function renderSession() {
  const box = document.getElementById('session');
  document.getElementById('nav').hidden = !ctx.me;
  if (!ctx.me) { fill(box); return; }
  const liveWords = { open: 'Live', connecting: 'Connecting…', down: 'Offline, retrying' };
  fill(box, 
    h('span', { class: `live live-${ctx.live}`, title: 'Updates from GET /api/events' }, liveWords[ctx.live]),
    h('span', {}, 'Signed in as ', h('strong', {}, ctx.me.name), ` (${ctx.me.role})`),
    h('button', { type: 'button', onclick: signOut }, 'Sign out'));
}

async function followEvents() {
  events?.abort();
  const controller = new AbortController();
  events = controller;
  let delay = 500;
  while (!controller.signal.aborted) {
    try {
      await streamEvents('/api/events', {
        signal: controller.signal,
        onOpen: () => {
          delay = 500;
          ctx.live = 'open';
          renderSession();
          // Whatever changed while the stream was down: fetch it now.
          scheduleRefresh({ event: 'reconnected' });
        },
        onEvent: (e) => scheduleRefresh({ event: e.event, data: parseData(e.data) }),
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err?.status === 401) return;
    }
    if (controller.signal.aborted) return;
    ctx.live = 'down';
    renderSession();
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

function showSignIn(message) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const problem = h('div', { 'aria-live': 'polite' }, message ? errorBox({ message }) : null);
  const form = h('form', { class: 'card signin', onsubmit: async (e) => {
    e.preventDefault();
    fill(problem);
    session.token = input.value.trim();
    const failure = await loadMe();
    if (failure) { fill(problem, errorBox({ message: failure })); input.focus(); }
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Paste an API token. It is kept in this browser tab only (sessionStorage) and sent as a bearer token.'),
  h('label', { for: 'token' }, 'API token'), input,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  problem);
  fill(main, form);
  document.title = 'Sign in · slipway';
  input.focus();
}

/** Signs in with the stored token; answers null on success, else what went wrong. */
async function loadMe() {
  if (!session.token) return 'No token.';
  try {
    ctx.me = (await api('GET', '/api/me')).body;
  } catch (err) {
    session.token = null;
    ctx.me = null;
    return err?.status === 401 || err?.status === 403
      ? 'That token was not accepted. Ask an admin for a token (POST /api/tokens), or use the one `slipway up` printed.'
      : err.message;
  }
  renderSession();
  followEvents();
  await render();
  announce(`Signed in as ${ctx.me.name}`);
  return null;
}

function signOut() {
  session.token = null;
  ctx.me = null;
  events?.abort();
  renderSession();
  render();
}

onUnauthorized(() => {
  if (!ctx.me) return;
  session.token = null;
  ctx.me = null;
  events?.abort();
  renderSession();
  showSignIn('Your token is no longer accepted; sign in again.');
});

window.addEventListener('hashchange', () => { render(); main.focus({ preventScroll: true }); });

if (session.token) {
  const failure = await loadMe();
  if (failure) showSignIn(failure);
} else {
  showSignIn();
}
