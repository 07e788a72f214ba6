// The UI's shell: a router on the URL's fragment, the theme, and the page
// modules loaded on demand. A route is #/<page>[/<path…>][?<params>];
// pages/<page>.js exports render(view, ctx) and may return a cleanup
// function (timers, websockets) called when the route changes.
import { h, clear } from './lib/dom.js';
import { errorBox } from './lib/api.js';
import { link } from './lib/route.js';
import { initSession, signedOut } from './lib/session.js';

const PAGES = ['home', 'logs', 'traces', 'trace', 'metrics', 'profiles', 'dumps'];
// The nav entry a page belongs to.
const SECTION = { trace: 'traces' };

let cleanup = null;
let controller = null;
let current = '';

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [p, qs = ''] = raw.split(/\?(.*)/s);
  const parts = p.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'home', path: parts.slice(1), params: new URLSearchParams(qs) };
}

// setParams rewrites the URL's parameters without rendering again (the
// page already shows them), so that the address bar is always a deep link.
function setParams(route, params, push = false) {
  const href = link(route.page, route.path, params);
  current = href;
  if (push) history.pushState(null, '', href);
  else history.replaceState(null, '', href);
  route.params = new URLSearchParams(href.split('?')[1] || '');
}

// stop ends the page shown (its requests, timers and websockets).
function stop() {
  current = '';
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  if (controller) controller.abort();
  controller = null;
}

async function render() {
  if (signedOut()) return;
  if (location.hash === current && current !== '') return;
  current = location.hash;
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  if (controller) controller.abort();
  controller = new AbortController();
  const route = parseRoute();
  const view = document.getElementById('view');
  const section = SECTION[route.page] || route.page;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!PAGES.includes(route.page)) {
    clear(view, h('h1', null, 'Not found'), h('p', null, `There is no page "${route.page}". `, h('a', { href: '#/' }, 'Home')));
    return;
  }
  document.title = `${route.page[0].toUpperCase()}${route.page.slice(1)} · Vigil`;
  const ctx = {
    path: route.path,
    params: route.params,
    signal: controller.signal,
    setParams: (params, push) => setParams(route, params, push),
    navigate: (page, path = [], params = {}) => { location.hash = link(page, path, params).slice(1); },
  };
  clear(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const mod = await import(`./pages/${route.page}.js`);
    if (ctx.signal.aborted) return;
    clear(view);
    const c = await mod.render(view, ctx);
    if (typeof c === 'function') {
      if (ctx.signal.aborted) c(); else cleanup = c;
    }
  } catch (err) {
    if (ctx.signal.aborted) return;
    console.warn(err);
    clear(view, errorBox(err));
  }
}

function initTheme() {
  const saved = localStorage.getItem('vigil-theme');
  const dark = saved ? saved === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  document.getElementById('theme').addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('vigil-theme', next);
  });
}

initTheme();
window.addEventListener('hashchange', render);
window.addEventListener('popstate', () => { current = ''; render(); });
initSession({ start: () => { current = ''; render(); }, stop });
