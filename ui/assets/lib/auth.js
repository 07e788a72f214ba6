// Signing in: the tenant key the UI sends on every call to Vigil's APIs.
// The key is kept in sessionStorage — for this browser tab only, gone when
// the tab closes, never shared with other tabs or kept on disk across
// sessions as localStorage would — and sent as Authorization: Bearer
// (fetch) or as a websocket subprotocol (the live tail: a browser cannot
// set headers on a websocket, and a key in the URL would land in logs).

const STORAGE = 'vigil-key';
// The UI's requests say so: Vigil then answers their 401 without
// WWW-Authenticate, which would make the browser pop up its own basic
// auth dialog over the sign-in form.
const UI_HEADER = ['X-Requested-With', 'vigil-ui'];
// Subprotocols of a websocket carrying the key, as internal/auth reads
// them: the key in unpadded base64url after KEY_PROTOCOL, beside
// PROTOCOL, which Vigil selects.
const PROTOCOL = 'vigil';
const KEY_PROTOCOL = 'base64url.bearer.vigil.';

// UNAUTHORIZED is the window event dispatched when an API answers 401;
// its detail is the API's message.
export const UNAUTHORIZED = 'vigil:unauthorized';

function storage() {
  try { return window.sessionStorage; } catch (_) { return null; }
}

// getKey returns the key signed in with, or ''.
export function getKey() {
  const s = storage();
  return (s && s.getItem(STORAGE)) || '';
}

// setKey keeps key for the tab; an empty key signs out.
export function setKey(key) {
  const s = storage();
  if (!s) return;
  if (key) s.setItem(STORAGE, key);
  else s.removeItem(STORAGE);
}

// authHeaders returns the headers every call to the APIs carries, merged
// into headers (a plain object).
export function authHeaders(headers = {}) {
  const out = { [UI_HEADER[0]]: UI_HEADER[1], ...headers };
  const key = getKey();
  if (key && !Object.keys(out).some(k => k.toLowerCase() === 'authorization')) out.Authorization = `Bearer ${key}`;
  return out;
}

function base64url(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// wsProtocols returns the subprotocols a websocket to Vigil offers: the
// key's, when signed in, or none.
export function wsProtocols() {
  const key = getKey();
  return key ? [PROTOCOL, KEY_PROTOCOL + base64url(key)] : [];
}

// unauthorized tells the shell that an API refused the key (or its
// absence): it shows the sign-in form with message.
export function unauthorized(message) {
  window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: message }));
}
