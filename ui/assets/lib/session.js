// The sign-in form and the header's "Sign out": when Vigil asks for a key
// (an API answers 401), the page is stopped and the form shown in its
// place, with the API's message; once a key is accepted the page renders
// again with it. With authentication off none of this shows.
import { h, clear } from './dom.js';
import { apiFetch, errorMessage } from './api.js';
import { getKey, setKey, UNAUTHORIZED } from './auth.js';

const WHOAMI = '/vigil/api/v1/whoami';

let opts = null;
let form = null;

// signedOut tells whether the form is shown (the page must not render).
export function signedOut() { return form !== null; }

// whoami asks Vigil who key is (the stored key when undefined): {status,
// body, message}.
async function whoami(key) {
  const headers = { Accept: 'application/json' };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  const res = await apiFetch(WHOAMI, { headers });
  const text = await res.text();
  if (res.ok) return { status: res.status, body: JSON.parse(text) };
  return { status: res.status, message: errorMessage(text) || `${res.status} ${res.statusText}` };
}

// showUser puts the tenant and "Sign out" in the header, or nothing.
function showUser(who) {
  let el = document.getElementById('session');
  if (!who || !who.auth) { if (el) el.remove(); return; }
  if (!el) {
    el = h('span', { id: 'session', class: 'session' });
    document.getElementById('theme').before(el);
  }
  clear(el,
    h('span', { class: 'muted small', id: 'session-tenant', title: `Scopes: ${(who.scopes || []).join(', ') || 'none'}` }, `Tenant ${who.tenant}`),
    h('button', { type: 'button', id: 'sign-out', class: 'ghost', onclick: signOut }, 'Sign out'));
}

function signOut() {
  setKey('');
  showForm('');
}

// showForm stops the page and shows the form, with message (the API's)
// when there is one.
function showForm(message) {
  const view = document.getElementById('view');
  showUser(null);
  if (!form) {
    opts.stop();
    const input = h('input', { type: 'password', id: 'signin-key', name: 'key', required: true, autocomplete: 'current-password', spellcheck: 'false', class: 'grow' });
    const button = h('button', { type: 'submit', id: 'signin-submit' }, 'Sign in');
    const note = h('div', { id: 'signin-message' });
    form = h('form', { id: 'signin', class: 'signin panel', 'aria-labelledby': 'signin-title', onsubmit: ev => submit(ev, input, button, note) },
      h('h1', { id: 'signin-title' }, 'Sign in'),
      h('p', { class: 'muted' }, 'Vigil asks for a tenant key (see docs/security.md). It is kept for this browser tab only, and forgotten when the tab closes or you sign out.'),
      // A user name field, which password managers and Chrome expect
      // beside a password; Vigil reads only the key.
      h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'vigil', hidden: true, 'aria-hidden': 'true', tabindex: '-1' }),
      h('div', { class: 'row' }, h('label', { for: 'signin-key' }, 'Key'), input, button),
      note);
    view.hidden = true;
    view.before(form);
    input.focus();
  }
  clear(form.querySelector('#signin-message'), message ? h('div', { class: 'error', role: 'alert' }, message) : null);
}

async function submit(ev, input, button, note) {
  ev.preventDefault();
  const key = input.value.trim();
  if (!key) return;
  button.disabled = true;
  clear(note, h('p', { class: 'muted small' }, 'Checking the key…'));
  let who;
  try {
    who = await whoami(key);
  } catch (err) {
    who = { status: 0, message: `Vigil could not be reached: ${err.message}` };
  } finally {
    button.disabled = false;
  }
  if (who.status !== 200) {
    clear(note, h('div', { class: 'error', role: 'alert' }, who.message, h('div', { class: 'small muted' }, `HTTP ${who.status} from ${WHOAMI}`)));
    input.select();
    return;
  }
  setKey(key);
  form.remove();
  form = null;
  document.getElementById('view').hidden = false;
  showUser(who.body);
  opts.start();
}

// initSession asks Vigil who the tab is, then starts the page (start) or
// shows the form; an API's 401 later stops the page (stop) and shows the
// form again.
export async function initSession({ start, stop }) {
  opts = { start, stop };
  window.addEventListener(UNAUTHORIZED, ev => {
    // A stored key refused: it was removed or changed in --auth.config.
    if (getKey()) setKey('');
    showForm(ev.detail);
  });
  let who = null;
  try { who = await whoami(); } catch (_) { /* the page shows what fails */ }
  if (who && (who.status === 401 || who.status === 403)) {
    if (who.status === 403) setKey('');
    showForm(who.message);
    return;
  }
  if (who && who.status === 200) showUser(who.body);
  start();
}
