// Traces: the search (#/traces?service=&operation=&tags=&minDuration=
// &maxDuration=&limit=&from=&to=) with a duration-over-time scatter and the
// list of traces found, and the service dependency graph
// (#/traces?view=graph&from=&to=). Both read Vigil's Jaeger API.
import { h, clear, fmtDuration, fmtTime } from '../lib/dom.js';
import { getJSON, errorBox, isAbort } from '../lib/api.js';
import { link, traceLink } from '../lib/route.js';
import { range, rangePicker } from '../lib/time.js';
import { scatter, color } from '../lib/chart.js';
import { summary } from '../lib/trace-model.js';
import { renderGraph } from './traces-graph.js';

const LIMITS = ['20', '50', '100', '200', '500'];

// parseLogfmt reads Jaeger UI's tag filter, `key=value key2="a b"`, into
// an object; it throws naming the part it cannot read.
export function parseLogfmt(text) {
  const out = {};
  const re = /\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)\s*/y;
  let i = 0;
  text = text.trim();
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) throw new Error(`tags: cannot read "${text.slice(i)}"; want key=value pairs separated by spaces, e.g. error=true http.status_code=500`);
    out[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    i = re.lastIndex;
  }
  return out;
}

function tabs(active) {
  const tab = (v, label) => h('a', { href: link('traces', [], v ? { view: v } : {}), role: 'tab', 'aria-selected': String(active === v) }, label);
  return h('div', { class: 'tabs', role: 'tablist' }, tab('', 'Search'), tab('graph', 'Dependency graph'));
}

export function render(view, ctx) {
  const p = ctx.params;
  const graph = p.get('view') === 'graph';
  view.append(h('h1', null, 'Traces'), tabs(graph ? 'graph' : ''));
  const body = h('div');
  view.append(body);
  if (graph) return renderGraph(body, ctx);
  return renderSearch(body, ctx);
}

function renderSearch(view, ctx) {
  const p = ctx.params;
  const svcSel = h('select', { name: 'service', 'aria-label': 'Service', required: true }, h('option', { value: '' }, 'Service…'));
  const opSel = h('select', { name: 'operation', 'aria-label': 'Operation' }, h('option', { value: '' }, 'All operations'));
  const tagsIn = h('input', { type: 'text', name: 'tags', value: p.get('tags') || '', size: 36, placeholder: 'error=true http.status_code=500', 'aria-label': 'Tags (logfmt)' });
  const minIn = h('input', { type: 'text', name: 'minDuration', value: p.get('minDuration') || '', size: 7, placeholder: '1.2ms', 'aria-label': 'Min duration' });
  const maxIn = h('input', { type: 'text', name: 'maxDuration', value: p.get('maxDuration') || '', size: 7, placeholder: '1s', 'aria-label': 'Max duration' });
  const limit = p.get('limit') || '20';
  const limSel = h('select', { name: 'limit', 'aria-label': 'Limit' }, [...new Set([...LIMITS, limit])].map(v => h('option', { value: v, selected: v === limit }, v)));
  let rangeVal = { from: p.get('from') || 'now-1h', to: p.get('to') || 'now' };
  const picker = rangePicker(p, r => { rangeVal = r; submit(); });
  const form = h('form', { class: 'toolbar', onsubmit: ev => { ev.preventDefault(); submit(); } },
    svcSel, opSel, tagsIn,
    h('label', null, 'min', minIn), h('label', null, 'max', maxIn),
    h('label', null, 'limit', limSel), picker,
    h('button', { type: 'submit' }, 'Find traces'));
  const out = h('div', { class: 'traces-out' });
  view.append(form, out);

  async function loadOperations(svc, want) {
    clear(opSel, h('option', { value: '' }, 'All operations'));
    if (!svc) return;
    try {
      const r = await getJSON(`/api/services/${encodeURIComponent(svc)}/operations`, null, { signal: ctx.signal });
      const ops = r.data || [];
      if (want && !ops.includes(want)) ops.push(want);
      for (const op of ops) opSel.append(h('option', { value: op, selected: op === want }, op));
    } catch (err) { if (!isAbort(err)) out.prepend(errorBox(err)); }
  }
  svcSel.addEventListener('change', () => loadOperations(svcSel.value, ''));

  function params() {
    return {
      service: svcSel.value, operation: opSel.value, tags: tagsIn.value.trim(),
      minDuration: minIn.value.trim(), maxDuration: maxIn.value.trim(), limit: limSel.value,
      from: rangeVal.from, to: rangeVal.to,
    };
  }

  function submit() {
    const q = params();
    ctx.setParams(q, true);
    search(q);
  }

  let searchCtl = null;
  async function search(q) {
    if (!q.service) { clear(out, h('p', { class: 'empty' }, 'Choose a service, then Find traces.')); return; }
    let tags;
    try { tags = q.tags ? JSON.stringify(parseLogfmt(q.tags)) : ''; } catch (err) { clear(out, errorBox(err)); return; }
    const r = range(new URLSearchParams({ from: q.from, to: q.to }));
    if (searchCtl) searchCtl.abort();
    searchCtl = new AbortController();
    const signal = AbortSignal.any ? AbortSignal.any([ctx.signal, searchCtl.signal]) : ctx.signal;
    clear(out, h('p', { class: 'muted' }, 'Searching…'));
    const t0 = performance.now();
    let res;
    try {
      res = await getJSON('/api/traces', {
        service: q.service, operation: q.operation, tags, minDuration: q.minDuration, maxDuration: q.maxDuration,
        limit: q.limit, start: Math.floor(r.start * 1000), end: Math.ceil(r.end * 1000),
      }, { signal });
    } catch (err) {
      if (!isAbort(err)) clear(out, errorBox(err));
      return;
    }
    showResults(res.data || [], r, t0);
  }

  let sortBy = 'recent';
  function showResults(traces, r, t0) {
    const sums = traces.map(summary);
    const sorters = {
      recent: (a, b) => b.start - a.start, longest: (a, b) => b.duration - a.duration,
      shortest: (a, b) => a.duration - b.duration, spans: (a, b) => b.spans - a.spans,
    };
    const svcColor = new Map();
    for (const s of sums) if (!svcColor.has(s.rootService)) svcColor.set(s.rootService, color(svcColor.size));
    const open = s => ctx.navigate('trace', [s.traceID]);
    const points = sums.map(s => ({
      t: s.start / 1000, v: s.duration / 1000, r: Math.min(9, 3 + Math.log2(s.spans + 1)),
      color: s.errors ? 'var(--err)' : svcColor.get(s.rootService),
      title: `${s.rootService}: ${s.rootOperation} · ${fmtDuration(s.duration / 1000)} · ${s.spans} spans${s.errors ? ` · ${s.errors} errors` : ''}`,
      onclick: () => open(s),
    }));
    const table = h('tbody');
    function fillTable() {
      clear(table, sums.slice().sort(sorters[sortBy]).map(s => h('tr', { class: 'trace-result' },
        h('td', null, h('a', { href: traceLink(s.traceID) }, h('b', null, s.rootService), ': ', s.rootOperation),
          h('div', { class: 'small muted mono' }, s.traceID)),
        h('td', null, [...s.services].slice(0, 8).map(([svc, k]) => h('span', { class: 'badge' }, `${svc} ${k}`)), s.services.size > 8 ? h('span', { class: 'muted small' }, ` +${s.services.size - 8}`) : null),
        h('td', { class: 'num' }, String(s.spans)),
        h('td', { class: 'num' }, s.errors ? h('span', { class: 'badge err' }, String(s.errors)) : '0'),
        h('td', { class: 'num' }, fmtDuration(s.duration / 1000)),
        h('td', { class: 'num' }, fmtTime(s.start / 1000)))));
    }
    fillTable();
    const sortSel = h('select', { 'aria-label': 'Sort', onchange: () => { sortBy = sortSel.value; fillTable(); } },
      [['recent', 'Most recent'], ['longest', 'Longest first'], ['shortest', 'Shortest first'], ['spans', 'Most spans']].map(([v, l]) => h('option', { value: v, selected: v === sortBy }, l)));
    clear(out,
      h('div', { class: 'row' }, h('b', null, `${sums.length} trace${sums.length === 1 ? '' : 's'}`), h('span', { class: 'muted small' }, `in ${Math.round(performance.now() - t0)} ms`), h('span', { class: 'grow' }), sortSel),
      sums.length ? h('div', { class: 'panel traces-scatter' }, scatter({ points, start: r.start, end: r.end, yFormat: fmtDuration })) : null,
      sums.length ? h('table', { class: 'traces-table' }, h('thead', null, h('tr', null,
        h('th', null, 'Trace'), h('th', null, 'Services'), h('th', { class: 'num' }, 'Spans'), h('th', { class: 'num' }, 'Errors'),
        h('th', { class: 'num' }, 'Duration'), h('th', { class: 'num' }, 'Start'))), table)
        : h('p', { class: 'empty' }, 'No traces match in this range.'));
  }

  (async () => {
    const want = p.get('service') || '';
    try {
      const r = await getJSON('/api/services', null, { signal: ctx.signal });
      const list = r.data || [];
      if (want && !list.includes(want)) list.push(want);
      for (const svc of list) svcSel.append(h('option', { value: svc, selected: svc === want }, svc));
    } catch (err) { if (!isAbort(err)) out.prepend(errorBox(err)); return; }
    if (want) {
      await loadOperations(want, p.get('operation') || '');
      search(params());
    } else clear(out, h('p', { class: 'empty' }, 'Choose a service, then Find traces.'));
  })();

  return () => { if (searchCtl) searchCtl.abort(); };
}
