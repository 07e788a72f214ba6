// One trace: #/trace/<traceID>?span=<spanID>. A header with the trace's
// figures, the span waterfall with the critical path, and the details of
// the selected span (tags, logs, process) with links to its logs and its
// service's profile over the span's time.
import { h, clear, fmtDuration, fmtTime } from '../lib/dom.js';
import { getJSON, errorBox } from '../lib/api.js';
import { logsLink, profilesLink, tracesLink, traceLink } from '../lib/route.js';
import { model, criticalPath } from '../lib/trace-model.js';
import { waterfall, serviceColors } from './trace-waterfall.js';

// Margins around a span's time for the links to its logs and profile: logs
// written just before or after the span still belong to it, and a CPU
// profile covers a window of about 10 s, so a short span falls inside one
// only when the range is widened.
const LOG_MARGIN_MS = 30e3;
const PROFILE_MARGIN_MS = 15e3;

// CPU_TYPE is the Pyroscope profile type id of the CPU profiles Vigil
// stores (docs/profiles.md: type cpu, sample type cpu in nanoseconds).
const CPU_TYPE = 'cpu:cpu:nanoseconds:cpu:nanoseconds';

function quote(v) { return JSON.stringify(String(v)); }

// spanLogsQuery: the LogQL query for the lines of a span's service that
// mention the trace id.
export function spanLogsHref(n, traceID) {
  const q = `{service_name=${quote(n.service)}} |= ${quote(traceID)}`;
  return logsLink(q, { from: String(Math.floor(n.start / 1000 - LOG_MARGIN_MS)), to: String(Math.ceil(n.end / 1000 + LOG_MARGIN_MS)) });
}

// spanProfileHref: the CPU profile of the span's service over its time.
export function spanProfileHref(n) {
  const q = `${CPU_TYPE}{service_name=${quote(n.service)}}`;
  return profilesLink({ query: q, from: String(Math.floor(n.start / 1000 - PROFILE_MARGIN_MS)), to: String(Math.ceil(n.end / 1000 + PROFILE_MARGIN_MS)) });
}

function tagValue(t) {
  if (t.type === 'binary') return `0x${[...atob(t.value || '')].map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join('')}`;
  return typeof t.value === 'string' ? t.value : JSON.stringify(t.value);
}

function kv(tags) {
  if (!tags || !tags.length) return h('p', { class: 'muted small' }, 'none');
  return h('dl', { class: 'kv' }, tags.map(t => [h('dt', null, t.key), h('dd', null, tagValue(t))]));
}

function details(n, m) {
  const sp = n.span;
  const logs = sp.logs || [];
  const refs = (sp.references || []).filter(r => r.spanID !== (n.parent && n.parent.id) || r.refType !== 'CHILD_OF');
  return h('div', { class: 'panel trace-detail', 'aria-live': 'polite' },
    h('h2', null, h('span', { class: 'muted' }, n.service, ' · '), sp.operationName, n.error ? [' ', h('span', { class: 'badge err' }, 'error')] : null),
    h('div', { class: 'row small' },
      h('a', { href: spanLogsHref(n, m.traceID), class: 'trace-logs-link' }, 'Logs of this span'),
      h('a', { href: spanProfileHref(n), class: 'trace-profile-link' }, 'CPU profile of ' + n.service),
      h('a', { href: tracesLink(n.service, { operation: sp.operationName }) }, 'Similar traces')),
    h('dl', { class: 'kv' },
      h('dt', null, 'span id'), h('dd', null, sp.spanID),
      h('dt', null, 'parent'), h('dd', null, n.parent ? h('a', { href: traceLink(m.traceID, n.parent.id) }, n.parent.id) : '—'),
      h('dt', null, 'start'), h('dd', null, `${fmtTime(n.start / 1000)} (+${fmtDuration((n.start - m.start) / 1000)})`),
      h('dt', null, 'duration'), h('dd', null, fmtDuration((n.end - n.start) / 1000)),
      h('dt', null, 'children'), h('dd', null, String(n.children.length))),
    h('h3', null, `Tags (${(sp.tags || []).length})`), h('div', { class: 'span-tags' }, kv(sp.tags)),
    h('h3', null, `Logs (${logs.length})`),
    logs.length ? logs.slice(0, 200).map(l => h('div', { class: 'trace-log' },
      h('div', { class: 'small muted' }, `+${fmtDuration((l.timestamp - m.start) / 1000)} · ${fmtTime(l.timestamp / 1000)}`),
      kv(l.fields))) : h('p', { class: 'muted small' }, 'none'),
    refs.length ? [h('h3', null, 'References'), h('ul', { class: 'small' }, refs.map(r =>
      h('li', null, r.refType, ' ', r.traceID === m.traceID ? h('a', { href: traceLink(m.traceID, r.spanID) }, r.spanID) : `${r.traceID}/${r.spanID}`)))] : null,
    h('h3', null, 'Process'), kv([{ key: 'service.name', value: n.service }, ...(n.process.tags || [])]));
}

export async function render(view, ctx) {
  const id = ctx.path[0] || '';
  const head = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  view.append(h('h1', null, 'Trace ', h('code', null, id || '(none)')), head);
  if (!id) { clear(head, h('div', { class: 'error', role: 'alert' }, 'No trace id in the address (want #/trace/<traceID>).')); return; }
  let trace;
  try {
    const res = await getJSON(`/api/traces/${encodeURIComponent(id)}`, null, { signal: ctx.signal });
    trace = (res.data || [])[0];
    if (!trace) throw new Error((res.errors || []).map(e => e.msg).join('; ') || `trace not found: ${id}`);
  } catch (err) {
    if (!ctx.signal.aborted) clear(head, errorBox(err));
    return;
  }

  const t0 = performance.now();
  const m = model(trace);
  const cp = criticalPath(m);
  const colors = serviceColors(m);
  const cpSpans = new Set(cp.map(s => s.node)).size;
  const maxDepth = m.rows.reduce((d, n) => Math.max(d, n.depth), 0);
  const side = h('div', { class: 'trace-side' });
  const wf = waterfall(m, cp, colors, n => { ctx.setParams({ span: n.id }); show(wf.select(n.id)); });

  function show(n) {
    clear(side, n ? details(n, m) : h('p', { class: 'muted' }, 'Choose a span for its tags, logs and process.'));
  }

  clear(head,
    h('div', { class: 'row trace-summary' },
      m.root ? h('b', null, `${m.root.service}: ${m.root.span.operationName}`) : null,
      h('span', { class: 'badge' }, `${m.rows.length} spans`),
      m.errors ? h('span', { class: 'badge err' }, `${m.errors} error${m.errors === 1 ? '' : 's'}`) : null,
      h('span', { class: 'muted' }, `${fmtDuration(m.duration / 1000)} · ${fmtTime(m.start / 1000)} · depth ${maxDepth + 1} · ${m.services.length} services`),
      h('span', { class: 'badge cp-badge', title: 'The spans whose work determines the trace\'s end-to-end latency' }, `critical path: ${cpSpans} spans`),
      h('a', { href: tracesLink(m.root ? m.root.service : '') }, 'Search this service')),
    h('div', { class: 'legend' }, m.services.map(svc => h('span', null, h('i', { style: { background: colors.get(svc) } }), svc)),
      h('span', null, h('i', { class: 'cp-key' }), 'critical path')),
    h('div', { class: 'trace-layout' }, h('div', { class: 'trace-main' }, wf.el), side));

  const want = ctx.params.get('span');
  show(want ? wf.select(want, true) : null);
  if (want && !m.byID.has(want)) side.prepend(h('div', { class: 'error', role: 'alert' }, `span ${want} is not in this trace`));

  // The time from the trace's JSON to its rows on screen, for the tests
  // and docs/BENCHMARKS.md: built, then laid out and painted once.
  const built = performance.now() - t0;
  requestAnimationFrame(() => setTimeout(() => {
    const painted = performance.now() - t0;
    wf.el.dataset.renderMs = painted.toFixed(1);
    wf.el.dataset.buildMs = built.toFixed(1);
    performance.measure('vigil-trace-render', { start: t0, duration: painted });
  }, 0));
}
