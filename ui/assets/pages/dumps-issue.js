// One dump issue, #/dumps/<issue id>?event=<event id>: its counts and
// status (resolve, ignore, reopen), an event's stack with the in-app
// frames highlighted and the others folded, every goroutine of the dump,
// the latest events with their traces.
import { h, clear, fmtNumber, fmtTime } from '../lib/dom.js';
import { getJSON, postJSON, errorBox, isAbort } from '../lib/api.js';
import { traceLink, dumpsLink, issueLink, logsLink } from '../lib/route.js';
import { statusBadge, levelBadge, nsAgo } from './dumps.js';

const API = '/vigil/api/v1/dumps/';
const MAX_GOROUTINES = 500;

export async function render(view, ctx) {
  const id = ctx.path[0];
  let data;
  try {
    data = await getJSON(API + 'issues/' + encodeURIComponent(id), { events: 50 }, { signal: ctx.signal });
  } catch (err) {
    if (!isAbort(err)) view.append(h('h1', null, `Issue ${id}`), errorBox(err), h('p', null, h('a', { href: dumpsLink() }, 'All issues')));
    return;
  }
  const is = data.issue;
  const header = h('div');
  const drawHeader = issue => clear(header, issueHeader(issue, ctx, drawHeader));
  drawHeader(is);

  const eventBox = h('div', null, h('p', { class: 'muted' }, 'Loading the event…'));
  const chosen = ctx.params.get('event') || (data.events[0] && data.events[0].event_id) || is.last_event_id;
  view.append(header, eventBox, h('h2', null, `Latest events (${data.events.length} of ${fmtNumber(is.count)})`), eventsTable(id, data.events, chosen));
  if (!chosen) { clear(eventBox, h('p', { class: 'empty' }, 'No event of this issue is stored any more.')); return; }
  try {
    const ev = await getJSON(API + 'events/' + encodeURIComponent(chosen), null, { signal: ctx.signal });
    clear(eventBox, eventView(ev));
    performance.mark('vigil-dumps-ready');
  } catch (err) {
    if (!isAbort(err)) clear(eventBox, errorBox(err));
  }
}

function issueHeader(is, ctx, redraw) {
  const msg = h('span', { class: 'small', role: 'status' });
  const setStatus = async status => {
    try {
      const updated = await postJSON(API + 'issues/' + encodeURIComponent(is.id) + '/status', { status }, { signal: ctx.signal });
      redraw(updated);
    } catch (err) { if (!isAbort(err)) clear(msg, errorBox(err)); }
  };
  const btn = (status, label) => h('button', { type: 'button', class: status === 'resolved' ? '' : 'ghost', dataset: { status }, onclick: () => setStatus(status) }, label);
  const actions = is.status === 'unresolved' ? [btn('resolved', 'Resolve'), btn('ignored', 'Ignore')] : [btn('unresolved', 'Reopen')];
  const dl = (k, v) => v === null || v === undefined || v === '' ? null : [h('dt', null, k), h('dd', null, v)];
  return h('div', null,
    h('p', { class: 'small' }, h('a', { href: dumpsLink({ service: is.service }) }, `Issues of ${is.service}`)),
    h('h1', { class: 'dumps-issue-title' }, is.title || '<unlabeled event>'),
    h('div', { class: 'row' }, statusBadge(is.status), levelBadge(is.level),
      is.regressed_at ? h('span', { class: 'badge warn' }, 'regressed') : null,
      h('span', { class: 'mono small' }, is.culprit || ''), h('span', { class: 'grow' }), ...actions, msg),
    h('dl', { class: 'kv dumps-counts' },
      dl('events', h('span', { class: 'dumps-count' }, fmtNumber(is.count))),
      dl('first seen', [nsAgo(is.first_seen), ` (${fmtTime(is.first_seen / 1e6, false)})`]),
      dl('last seen', [nsAgo(is.last_seen), ` (${fmtTime(is.last_seen / 1e6, false)})`]),
      dl('service', [is.service, is.grade ? ` (grade ${is.grade})` : '']),
      dl('releases', (is.releases || []).join(', ')),
      dl('environments', (is.environments || []).join(', ')),
      dl('hosts', (is.hosts || []).join(', ')),
      is.resolved_at ? dl('resolved', fmtTime(is.resolved_at / 1e6, false)) : null,
      is.regressed_at ? dl('regressed', fmtTime(is.regressed_at / 1e6, false)) : null,
      dl('issue id', is.id)));
}

function eventsTable(issueID, events, chosen) {
  if (!events.length) return h('p', { class: 'empty' }, 'No events stored.');
  return h('table', { class: 'dumps-events' }, h('thead', null, h('tr', null,
    h('th', null, 'Event'), h('th', null, 'Time'), h('th', null, 'Release'), h('th', null, 'Env'), h('th', null, 'Host'), h('th', null, 'Message'), h('th', null, 'Trace'))),
  h('tbody', null, events.map(e => {
    const exc = (e.exceptions || [])[(e.exceptions || []).length - 1];
    return h('tr', { class: e.event_id === chosen ? 'selected' : '' },
      h('td', { class: 'mono small' }, h('a', { href: issueLink(issueID, { event: e.event_id }), 'aria-current': e.event_id === chosen ? 'true' : null }, e.event_id.slice(0, 12))),
      h('td', { class: 'small' }, nsAgo(e.timestamp)),
      h('td', { class: 'small' }, e.release || ''), h('td', { class: 'small' }, e.environment || ''), h('td', { class: 'small' }, e.server_name || ''),
      h('td', { class: 'small' }, exc ? `${exc.type}: ${exc.value || ''}` : e.message || ''),
      h('td', { class: 'small' }, e.trace_id ? h('a', { href: traceLink(e.trace_id, e.span_id), class: 'mono' }, e.trace_id.slice(0, 16) + '…') : '–'));
  })));
}

function eventView(ev) {
  const excs = ev.exceptions || [];
  const dl = (k, v) => v ? [h('dt', null, k), h('dd', null, v)] : null;
  return h('section', { class: 'panel dumps-event' },
    h('h2', null, 'Event ', h('span', { class: 'mono' }, ev.event_id)),
    h('dl', { class: 'kv' },
      dl('time', fmtTime(ev.timestamp / 1e6)),
      dl('trace', ev.trace_id ? [h('a', { href: traceLink(ev.trace_id, ev.span_id), class: 'dumps-trace' }, ev.trace_id), ' ',
        h('a', { href: logsLink(`{service="${ev.service}"} |= "${ev.trace_id}"`, { from: String(Math.round(ev.timestamp / 1e6 - 3600e3)), to: String(Math.round(ev.timestamp / 1e6 + 600e3)) }) }, 'its logs')] : null),
      dl('transaction', ev.transaction), dl('release', ev.release), dl('environment', ev.environment), dl('host', ev.server_name),
      dl('request', ev.request ? `${ev.request.method || ''} ${ev.request.url || ''}${ev.request.query_string ? '?' + ev.request.query_string : ''}` : ''),
      dl('sdk', ev.sdk), dl('message', excs.length ? ev.message : '')),
    excs.length ? excs.slice().reverse().map(exceptionView) : h('pre', null, ev.message || ''),
    goroutines(ev.threads || []),
    ev.tags && ev.tags.length ? h('details', null, h('summary', null, `Tags (${ev.tags.length})`),
      h('dl', { class: 'kv' }, ev.tags.map(t => [h('dt', null, t.Key ?? t.key), h('dd', null, t.Value ?? t.value)]))) : null,
    ev.contexts ? h('details', null, h('summary', null, 'Contexts'), h('pre', null, JSON.stringify(ev.contexts, null, 2))) : null);
}

function exceptionView(exc) {
  return h('div', { class: 'dumps-exception' },
    h('h3', null, h('span', { class: 'mono' }, exc.type || 'error'), exc.value ? `: ${exc.value}` : '',
      exc.mechanism ? h('span', { class: 'badge' }, exc.mechanism) : null,
      exc.handled === false ? h('span', { class: 'badge err' }, 'unhandled') : null),
    stack(exc.frames || [], true));
}

// stack lists frames newest first; in-app frames stand out and runs of
// other frames fold into one line that opens them.
export function stack(frames, fold) {
  const out = h('ol', { class: 'dumps-stack' });
  const newest = frames.slice().reverse();
  let run = [];
  const flush = () => {
    if (!run.length) return;
    if (fold && run.length > 1) {
      const items = run;
      const li = h('li', { class: 'dumps-folded' }, h('button', { type: 'button', class: 'ghost small', onclick: () => li.replaceWith(...items.map(frameItem)) },
        `${items.length} other frames`));
      out.append(li);
    } else out.append(...run.map(frameItem));
    run = [];
  };
  const anyInApp = frames.some(f => f.in_app);
  for (const f of newest) {
    if (f.in_app || !anyInApp) { flush(); out.append(frameItem(f)); } else run.push(f);
  }
  flush();
  return out;
}

function frameItem(f) {
  const file = f.filename || f.abs_path || '';
  return h('li', { class: 'dumps-frame' + (f.in_app ? ' in-app' : '') },
    h('span', { class: 'mono' }, f.function || '?'), f.in_app ? h('span', { class: 'badge' }, 'in app') : null,
    h('div', { class: 'small muted mono' }, `${f.module && !(f.function || '').startsWith(f.module) ? f.module + ' · ' : ''}${file}${f.lineno ? ':' + f.lineno : ''}`));
}

function goroutines(threads) {
  if (!threads.length) return null;
  const shown = threads.slice(0, MAX_GOROUTINES);
  return h('div', { class: 'dumps-goroutines' },
    h('h3', null, `Goroutines (${threads.length})`),
    shown.map(th => {
      const top = (th.frames || []).slice().reverse().find(f => f.in_app) || (th.frames || [])[(th.frames || []).length - 1];
      return h('details', { class: 'dumps-goroutine' + (th.crashed ? ' crashed' : ''), open: th.crashed || th.current },
        h('summary', null, h('span', { class: 'mono' }, `goroutine ${th.id}`), th.state ? ` [${th.state}]` : '', ' ',
          th.crashed ? h('span', { class: 'badge err' }, 'crashed') : null, th.current ? h('span', { class: 'badge' }, 'current') : null,
          top ? h('span', { class: 'small muted mono' }, ` ${top.function}`) : null),
        stack(th.frames || [], true));
    }),
    threads.length > shown.length ? h('p', { class: 'muted small' }, `${threads.length - shown.length} more goroutines not shown.`) : null);
}
