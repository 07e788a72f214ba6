// Profiles: a flame graph and a top table of any selection over a range,
// a diff of two ranges, and a link to pprof's web UI for the same
// selection. Reads Pyroscope's querier (connect JSON POSTs, as Grafana's
// Pyroscope data source sends them) on the query port.
//
// URL: #/profiles?query=<profile type id>{<selector>}&from=&to=&diff_from=&diff_to=
// — e.g. query=cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}.
// With diff_from/diff_to the range from/to (B) is compared with that
// baseline (A).
import { h, clear } from '../lib/dom.js';
import { postJSON, errorBox, isAbort } from '../lib/api.js';
import { rangePicker, range, parseTime } from '../lib/time.js';
import { link } from '../lib/route.js';
import { parseFlamegraph } from '../lib/flamegraph.js';
import { profileView } from './profiles-view.js';

const Q = '/querier.v1.QuerierService/';
const MAX_NODES = 4096;
// Pyroscope's names of types Vigil stores under its own.
const ALIAS = { process_cpu: 'cpu', memory: 'heap', goroutines: 'goroutine' };

// splitQuery: "cpu:…{a="b"}" → {type: "cpu:…", selector: '{a="b"}'}.
export function splitQuery(q) {
  const s = (q || '').trim();
  const i = s.indexOf('{');
  if (i < 0) return { type: s, selector: '{}' };
  return { type: s.slice(0, i).trim(), selector: s.slice(i) };
}

// resolveType finds the profile type id a query's type names among ids:
// the id itself, Pyroscope's alias of a Vigil type, or a bare type name.
export function resolveType(type, ids) {
  if (!type) return ids.find(id => id.startsWith('cpu:cpu:')) || ids.find(id => id.startsWith('cpu:')) || ids[0] || '';
  if (ids.includes(type)) return type;
  const parts = type.split(':');
  const name = ALIAS[parts[0]] || parts[0];
  if (parts.length === 5) {
    const id = [name, ...parts.slice(1)].join(':');
    if (ids.includes(id)) return id;
    return ids.find(x => x.startsWith(name + ':' + parts[1] + ':')) || type;
  }
  if (parts.length === 1) return ids.find(x => x.startsWith(name + ':')) || type;
  return type;
}

// withService sets the service_name matcher of a selector.
export function withService(selector, service) {
  const re = /service_name\s*(=~|!=|!~|=)\s*("(?:[^"\\]|\\.)*"|'[^']*'|`[^`]*`)\s*,?\s*/;
  let s = selector.trim() || '{}';
  s = s.replace(re, '').replace(/,\s*}$/, '}');
  if (!service) return s;
  const inner = s.slice(1, -1).trim();
  return `{service_name=${JSON.stringify(service)}${inner ? ', ' + inner : ''}}`;
}

// pprofSelector turns a Pyroscope selection into the pprof API's: the
// type's name and Vigil's label names (service, not service_name).
export function pprofSelector(typeID, selector) {
  const name = typeID.split(':')[0];
  return name + selector.replace(/(^|[{,\s])service_name(\s*(=~|!=|!~|=))/g, '$1service$2');
}

function call(method, body, signal) { return postJSON(Q + method, body, { signal }); }

export async function render(view, ctx) {
  const p = ctx.params;
  const r = range(p, 'now-1h');
  const diffOn = p.has('diff_from') || p.has('diff_to');
  const dFrom = p.get('diff_from') || '', dTo = p.get('diff_to') || '';
  let base = null;
  if (diffOn) {
    const bs = parseTime(dFrom), be = parseTime(dTo);
    base = { start: Number.isNaN(bs) ? r.start - (r.end - r.start) : bs, end: Number.isNaN(be) ? r.start : be };
  }
  const { type: qType, selector } = splitQuery(p.get('query'));
  const go = changes => {
    const next = new URLSearchParams(p);
    for (const [k, v] of Object.entries(changes)) { if (v === null || v === '' || v === undefined) next.delete(k); else next.set(k, v); }
    ctx.navigate('profiles', [], next);
  };

  const typeSel = h('select', { 'aria-label': 'Profile type', disabled: true }, h('option', null, 'Loading types…'));
  const svcSel = h('select', { 'aria-label': 'Service', disabled: true }, h('option', { value: '' }, 'All services'));
  const queryIn = h('input', { type: 'text', class: 'grow mono', value: p.get('query') || '', 'aria-label': 'Selector',
    placeholder: 'cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}' });
  const form = h('form', { class: 'toolbar', onsubmit: ev => { ev.preventDefault(); go({ query: queryIn.value.trim() }); } },
    typeSel, svcSel, queryIn, h('button', { type: 'submit' }, 'Run'),
    rangePicker(p, ({ from, to }) => go({ from, to }), 'now-1h'));
  const diffBar = h('div', { class: 'toolbar' });
  const pprofLink = h('span');
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  view.append(h('h1', null, 'Profiles'), form, diffBar, pprofLink, body);

  // The diff: B is the range above; A, the baseline, defaults to the
  // window of the same length just before it.
  if (diffOn) {
    const aFrom = h('input', { type: 'text', size: 14, value: dFrom || String(Math.round(base.start)), 'aria-label': 'Baseline from' });
    const aTo = h('input', { type: 'text', size: 14, value: dTo || String(Math.round(base.end)), 'aria-label': 'Baseline to' });
    diffBar.append(h('strong', null, 'Diff'), h('span', { class: 'muted' }, 'baseline A:'), aFrom, '→', aTo,
      h('button', { type: 'button', class: 'ghost', onclick: () => go({ diff_from: aFrom.value.trim(), diff_to: aTo.value.trim() }) }, 'Apply'),
      h('span', { class: 'muted small' }, 'compared with B, the range above: red frames grew, green shrank.'),
      h('a', { href: link('profiles', [], { query: p.get('query'), from: p.get('from'), to: p.get('to') }) }, 'Leave the diff'));
  } else {
    const len = r.end - r.start;
    diffBar.append(h('a', { class: 'fg-diff-link', href: link('profiles', [], { query: p.get('query'), from: p.get('from'), to: p.get('to'),
      diff_from: String(Math.round(r.start - len)), diff_to: String(Math.round(r.start)) }) }, 'Compare with the previous window (diff)'));
  }

  const span = { start: Math.round(Math.min(r.start, base ? base.start : r.start)), end: Math.round(r.end) };
  const t0 = performance.now();
  // The flame graph of a full profile type id is asked for at once, beside
  // the types; another type waits for the list of types to be resolved.
  const fetchGraph = typeID => {
    const req = (start, end) => ({ profileTypeID: typeID, labelSelector: selector, start: Math.round(start), end: Math.round(end), maxNodes: MAX_NODES });
    return diffOn ? call('Diff', { left: req(base.start, base.end), right: req(r.start, r.end) }, ctx.signal)
      : call('SelectMergeStacktraces', req(r.start, r.end), ctx.signal);
  };
  const qParts = qType.split(':');
  const early = qParts.length === 5 ? [ALIAS[qParts[0]] || qParts[0], ...qParts.slice(1)].join(':') : '';
  const earlyGraph = early ? fetchGraph(early) : null;
  if (earlyGraph) earlyGraph.catch(() => {}); // awaited below; an error there is shown then
  let types;
  try {
    types = await call('ProfileTypes', span, ctx.signal);
  } catch (err) {
    if (!isAbort(err)) clear(body, errorBox(err));
    return;
  }
  const ids = (types.profileTypes || []).map(t => t.ID || t.id).filter(Boolean).sort();
  const typeID = resolveType(qType, ids);
  clear(typeSel, ids.length ? ids.map(id => h('option', { value: id, selected: id === typeID }, id)) : h('option', null, 'No profiles in this range'));
  if (typeID && !ids.includes(typeID)) typeSel.prepend(h('option', { value: typeID, selected: true }, typeID));
  typeSel.disabled = !ids.length;
  typeSel.onchange = () => go({ query: typeSel.value + selector });
  const query = typeID + selector;
  if (!p.get('query') && typeID) ctx.setParams(Object.assign(Object.fromEntries(p), { query }));
  queryIn.value = query;
  if (!typeID) {
    clear(body, h('p', { class: 'empty' }, 'No profiles were stored in this range. Scrape pprof endpoints or push to the profiler (docs/profiles.md).'));
    performance.mark('vigil-profiles-ready');
    return;
  }

  const pprofHref = `/vigil/ui/pprof/?${new URLSearchParams({ query: pprofSelector(typeID, selector), start: String(Math.round(r.start)), end: String(Math.round(r.end)) })}`;
  clear(pprofLink, h('a', { class: 'pprof-link', href: pprofHref, target: '_blank', rel: 'noopener' }, 'Open in pprof\'s web UI'),
    diffOn ? h('span', { class: 'muted small' }, ' (the range B, merged)') : null);

  // The service picker, in parallel with the flame graph.
  call('LabelValues', { name: 'service_name', matchers: [`{__profile_type__=${JSON.stringify(typeID)}}`], ...span }, ctx.signal).then(res => {
    const current = (/service_name\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(selector) || [])[1] || '';
    const names = res.names || [];
    if (current && !names.includes(current)) names.unshift(current);
    svcSel.append(...names.map(n => h('option', { value: n, selected: n === current }, n)));
    svcSel.disabled = false;
    svcSel.onchange = () => go({ query: typeID + withService(selector, svcSel.value) });
  }, err => { if (!isAbort(err)) svcSel.title = err.message; });

  try {
    const res = await (early === typeID ? earlyGraph : fetchGraph(typeID));
    const tree = parseFlamegraph(res.flamegraph || {}, diffOn);
    const unit = typeID.split(':')[2];
    clear(body, profileView(tree, { unit, search: p.get('search') || '', onSearch: s => ctx.setParams(Object.assign(Object.fromEntries(ctx.params), { search: s })) }),
      h('p', { class: 'muted small' }, `${ids.length} profile types; answered and drawn in ${Math.round(performance.now() - t0)} ms`));
    performance.mark('vigil-profiles-ready');
  } catch (err) {
    if (!isAbort(err)) clear(body, errorBox(err));
  }
}
