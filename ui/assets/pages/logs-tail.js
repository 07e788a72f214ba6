// Live tail: Loki's /loki/api/v1/tail websocket, newest line on top, at
// most MAX_ROWS lines kept in the page (the oldest go).
import { h, clear } from '../lib/dom.js';
import { errorBox } from '../lib/api.js';
import { lokiGet, entries, row } from './logs-lines.js';
import { wsProtocols } from '../lib/auth.js';

export const MAX_ROWS = 500;

// startTail follows query into the element out; it returns {stop}. onEnd
// is called when the server or the network ends the tail.
export function startTail(out, { query, limit, signal, onFilter, onEnd }) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const u = `${proto}//${location.host}/loki/api/v1/tail?${new URLSearchParams({ query, limit: String(limit) })}`;
  const list = h('div', { id: 'logs-tail', class: 'logs-tail', 'aria-live': 'off' });
  const note = h('p', { class: 'muted small', id: 'logs-tail-state' }, 'Connecting…');
  clear(out, note, list);
  let stopped = false, count = 0;
  // The key rides as a subprotocol: a browser cannot set headers on a
  // websocket, and a key in the URL would land in logs.
  const ws = new WebSocket(u, wsProtocols());

  ws.onopen = () => { note.textContent = `Following — the newest ${MAX_ROWS} lines are kept.`; };
  ws.onmessage = ev => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    // Oldest first, each put on top: the newest ends up first.
    for (const e of entries(msg.streams, 'forward')) {
      list.prepend(row(e, { onFilter }));
      count++;
    }
    while (list.childElementCount > MAX_ROWS) list.lastElementChild.remove();
    note.textContent = `Following — ${count} line${count === 1 ? '' : 's'} received; the newest ${MAX_ROWS} are kept.`;
  };
  ws.onclose = async ev => {
    if (stopped) return;
    stopped = true;
    onEnd();
    if (ev.code === 1000) { note.textContent = 'The tail ended.'; return; }
    if (ev.reason) { note.replaceWith(errorBox(new Error(`The live tail ended: ${ev.reason}`))); return; }
    // The upgrade was refused (a bad query is a 400 before it): ask the
    // query API for its message.
    let err = new Error('The live tail could not connect.');
    try {
      await lokiGet('/loki/api/v1/query_range', { query, limit: 1 }, signal);
    } catch (e) { err = e; }
    if (!signal.aborted) note.replaceWith(errorBox(err));
  };

  const stop = () => {
    if (stopped) return;
    stopped = true;
    ws.close(1000, 'stopped');
    note.textContent = `Stopped — ${count} line${count === 1 ? '' : 's'} received.`;
  };
  signal.addEventListener('abort', stop);
  return { stop };
}
