// Calls to Vigil's own APIs. Every page reads the stores through the same
// endpoints Grafana and the other clients use; errors carry the API's own
// message, which the page shows instead of a blank view.
import { h } from './dom.js';
import { authHeaders, unauthorized } from './auth.js';

export class ApiError extends Error {
  constructor(status, message, url) {
    super(message);
    this.status = status;
    this.url = url;
  }
}

// url builds path?params, skipping empty values; params may be an object
// (arrays repeat the key) or URLSearchParams.
export function url(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [k, v] of entries) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach(x => q.append(k, x));
    else q.append(k, v);
  }
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

// errorMessage extracts the message from an error body in the shapes of
// the APIs Vigil serves: Prometheus and Loki ({"error": …}), Jaeger
// ({"errors": [{"msg": …}]}), Connect ({"message": …}), Sentry
// ({"detail": …}), or plain text.
export function errorMessage(text) {
  try {
    const j = JSON.parse(text);
    if (typeof j === 'string') return j;
    if (j.error && typeof j.error === 'string') return j.error;
    if (Array.isArray(j.errors) && j.errors.length) return j.errors.map(e => e.msg || e.message || JSON.stringify(e)).join('; ');
    if (j.message) return j.message;
    if (j.detail) return typeof j.detail === 'string' ? j.detail : JSON.stringify(j.detail);
  } catch (_) { /* not JSON */ }
  return text.trim();
}

async function check(res, u) {
  if (res.ok) return res;
  const text = await res.text();
  const err = new ApiError(res.status, errorMessage(text) || `${res.status} ${res.statusText}`, u);
  if (res.status === 401) unauthorized(err.message);
  throw err;
}

// apiFetch is fetch with the signed-in key and the UI's marker header
// (lib/auth.js) added to init.headers (a plain object): pages that need
// their own headers call it instead of fetch.
export function apiFetch(u, init = {}) {
  return fetch(u, { ...init, headers: authHeaders(init.headers) });
}

// checked throws the API's error for a failed answer res of u (and asks
// for a key on a 401), else returns res.
export function checked(res, u) { return check(res, u); }

// getJSON fetches path?params and returns its JSON body.
export async function getJSON(path, params, { signal } = {}) {
  const u = url(path, params);
  const res = await apiFetch(u, { signal, headers: { Accept: 'application/json' } });
  await check(res, u);
  return res.json();
}

// getText fetches path?params and returns the body as text.
export async function getText(path, params, { signal } = {}) {
  const u = url(path, params);
  const res = await apiFetch(u, { signal });
  await check(res, u);
  return res.text();
}

// postJSON sends body as JSON and returns the JSON answer (or null).
export async function postJSON(path, body, { signal, method = 'POST', headers = {} } = {}) {
  const res = await apiFetch(path, {
    method, signal, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
  });
  await check(res, path);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// postForm sends params as a form, as Grafana's Prometheus data source does.
export async function postForm(path, params, { signal } = {}) {
  const body = new URLSearchParams(url('', params).slice(1));
  const res = await apiFetch(path, { method: 'POST', signal, body, headers: { Accept: 'application/json' } });
  await check(res, path);
  return res.json();
}

// errorBox renders an error for the user: the API's message and, for an
// API error, the status and request.
export function errorBox(err) {
  if (err && err.name === 'AbortError') return null;
  const msg = err instanceof ApiError ? `${err.message}` : String(err && err.message || err);
  return h('div', { class: 'error', role: 'alert' },
    msg,
    err instanceof ApiError ? h('div', { class: 'small muted' }, `HTTP ${err.status} from ${err.url}`) : null);
}

// isAbort tells a cancelled request (the user navigated away) from a failure.
export function isAbort(err) { return err && err.name === 'AbortError'; }
