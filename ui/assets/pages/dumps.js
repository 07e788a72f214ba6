// Dumps: panics and errors grouped into issues (Vigil's dumps API,
// /vigil/api/v1/dumps/issues), filtered by service, environment, grade,
// status and time; #/dumps/<issue id> is one issue (pages/dumps-issue.js).
//
// URL: #/dumps?service=&env=&grade=&status=&query=&sort=&from=&to=
// (status: unresolved by default, "all" for every status).
import { h, clear, fmtNumber, fmtAgo, fmtTime } from '../lib/dom.js';
import { getJSON, errorBox, isAbort } from '../lib/api.js';
import { rangePicker, range } from '../lib/time.js';
import { issueLink, dumpsLink } from '../lib/route.js';

const API = '/vigil/api/v1/dumps/issues';
const PAGE = 100;
const DEFAULT_RANGE = 'now-7d';

export function statusBadge(status) {
  const cls = status === 'unresolved' ? 'err' : status === 'resolved' ? 'ok' : '';
  return h('span', { class: `badge ${cls}` }, status);
}

export function levelBadge(level) {
  const cls = level === 'fatal' || level === 'error' ? 'err' : level === 'warning' ? 'warn' : '';
  return h('span', { class: `badge ${cls}` }, level || 'error');
}

// nsAgo formats a Unix ns time as "3 min ago" with the exact time as title.
export function nsAgo(ns) {
  const ms = ns / 1e6;
  return h('time', { datetime: new Date(ms).toISOString(), title: fmtTime(ms) }, fmtAgo(ms));
}

export async function render(view, ctx) {
  if (ctx.path.length) {
    const mod = await import('./dumps-issue.js');
    return mod.render(view, ctx);
  }
  const p = ctx.params;
  const r = range(p, DEFAULT_RANGE);
  const status = p.get('status') || 'unresolved';
  const go = changes => {
    const next = Object.fromEntries(p);
    Object.assign(next, changes);
    ctx.navigate('dumps', [], next);
  };

  const svc = h('input', { type: 'text', name: 'service', value: p.get('service') || '', placeholder: 'service', 'aria-label': 'Service', size: 14 });
  const env = h('input', { type: 'text', name: 'env', value: p.get('env') || '', placeholder: 'environment', 'aria-label': 'Environment', size: 10 });
  const text = h('input', { type: 'search', name: 'query', value: p.get('query') || '', placeholder: 'title, culprit or issue id', 'aria-label': 'Search issues', class: 'grow' });
  const grade = h('select', { name: 'grade', 'aria-label': 'Grade' }, h('option', { value: '' }, 'Any grade'),
    ['1', '2', '3', '4'].map(g => h('option', { value: g, selected: p.get('grade') === g }, `Grade ${g}`)));
  const st = h('select', { name: 'status', 'aria-label': 'Status' },
    [['unresolved', 'Unresolved'], ['resolved', 'Resolved'], ['ignored', 'Ignored'], ['all', 'Any status']]
      .map(([v, l]) => h('option', { value: v, selected: status === v }, l)));
  const sort = h('select', { name: 'sort', 'aria-label': 'Sort' },
    [['last_seen', 'Last seen'], ['first_seen', 'First seen'], ['count', 'Events']].map(([v, l]) => h('option', { value: v, selected: (p.get('sort') || 'last_seen') === v }, l)));
  const apply = () => go({ service: svc.value.trim(), env: env.value.trim(), query: text.value.trim(), grade: grade.value, status: st.value, sort: sort.value === 'last_seen' ? '' : sort.value });
  for (const sel of [grade, st, sort]) sel.addEventListener('change', apply);
  const form = h('form', { class: 'toolbar', onsubmit: ev => { ev.preventDefault(); apply(); } },
    svc, env, grade, st, text, sort, h('button', { type: 'submit' }, 'Filter'),
    rangePicker(p, ({ from, to }) => go({ from, to }), DEFAULT_RANGE));
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  view.append(h('h1', null, 'Dumps'), form, list);

  const params = {
    service: p.get('service'), env: p.get('env'), grade: p.get('grade'), query: p.get('query'), sort: p.get('sort'),
    status: status === 'all' ? '' : status, start: String(Math.round(r.start)), end: String(Math.round(r.end)), limit: PAGE,
  };
  const tbody = h('tbody');
  const more = h('div');
  let shown = 0;
  async function load(cursor) {
    const res = await getJSON(API, { ...params, cursor }, { signal: ctx.signal });
    tbody.append(...res.issues.map(issueRow));
    shown += res.issues.length;
    clear(more, res.next_cursor ? h('button', { type: 'button', class: 'ghost', onclick: () => load(res.next_cursor).catch(fail) }, `Show ${PAGE} more`) : null);
    return res;
  }
  function fail(err) { if (!isAbort(err)) clear(list, errorBox(err)); }
  try {
    const res = await load('');
    if (!res.issues.length) {
      clear(list, h('p', { class: 'empty' }, 'No issues match. ', status !== 'all' ? h('a', { href: dumpsLink({ ...Object.fromEntries(p), status: 'all' }) }, 'Show every status') : null));
    } else {
      clear(list, h('table', { class: 'dumps-issues' }, h('thead', null, h('tr', null,
        h('th', null, 'Issue'), h('th', null, 'Service'), h('th', null, 'Env'), h('th', null, 'Status'),
        h('th', { class: 'num' }, 'Events'), h('th', null, 'First seen'), h('th', null, 'Last seen'))), tbody), more);
    }
    performance.mark('vigil-dumps-ready');
  } catch (err) { fail(err); }
}

function issueRow(is) {
  return h('tr', { dataset: { issue: is.id } },
    h('td', null, h('a', { href: issueLink(is.id), class: 'dumps-title' }, is.title || '<unlabeled event>'), ' ', levelBadge(is.level),
      h('div', { class: 'small muted mono' }, is.culprit || '')),
    h('td', null, h('a', { href: dumpsLink({ service: is.service }) }, is.service), is.grade ? h('span', { class: 'small muted' }, ` grade ${is.grade}`) : null),
    h('td', { class: 'small' }, (is.environments || []).join(', ')),
    h('td', null, statusBadge(is.status), is.regressed_at ? h('span', { class: 'badge warn', title: 'reopened by a new event after its resolution' }, 'regressed') : null),
    h('td', { class: 'num dumps-count' }, fmtNumber(is.count)),
    h('td', { class: 'small' }, nsAgo(is.first_seen)),
    h('td', { class: 'small' }, nsAgo(is.last_seen)));
}
