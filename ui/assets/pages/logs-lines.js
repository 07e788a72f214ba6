// The Logs page's results: Loki's answers turned into rows (time, level,
// labels as badges, the line), each expandable into its stream labels,
// structured metadata and parsed fields, with a link to the line's trace
// when it carries a trace id.
import { h, fmtTime } from '../lib/dom.js';
import { apiFetch, checked, url } from '../lib/api.js';
import { traceLink } from '../lib/route.js';

// lokiGet calls a Loki endpoint asking for categorized labels (Loki 3's
// encoding: stream labels apart from structured metadata and parsed
// labels), which lib/api.js's getJSON has no header for.
export async function lokiGet(path, params, signal) {
  const u = url(path, params);
  const res = await apiFetch(u, { signal, headers: { Accept: 'application/json', 'X-Loki-Response-Encoding-Flags': 'categorize-labels' } });
  await checked(res, u);
  return res.json();
}

// isLogQuery tells a log query (a stream selector and its pipeline) from a
// metric query (rate(…), sum by (…) (…), …): only the former starts with
// its selector.
export function isLogQuery(q) { return /^\s*\{/.test(q); }

// entries flattens a streams result into [{ts (ns, as a string), ms,
// line, stream, metadata, parsed}], newest first for backward and oldest
// first for forward, as the API ordered each stream.
export function entries(result, direction = 'backward') {
  const out = [];
  for (const st of result || []) {
    for (const v of st.values || []) {
      const cat = v[2] || {};
      out.push({
        ts: v[0], ms: Number(BigInt(v[0]) / 1000000n), line: v[1],
        stream: st.stream || {}, metadata: cat.structuredMetadata || {}, parsed: cat.parsed || {},
      });
    }
  }
  const cmp = (a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0);
  out.sort(direction === 'forward' ? cmp : (a, b) => cmp(b, a));
  return out;
}

const TRACE_KEYS = ['trace_id', 'traceID', 'traceId', 'trace.id', 'traceid'];
// A trace id in the line itself: a trace_id=…/"traceId":"…" pair in any
// spelling, or a W3C traceparent.
const TRACE_IN_LINE = /(?:trace[._-]?id)["']?\s*[:=]\s*["']?([0-9a-f]{32}|[0-9a-f]{16})(?![0-9a-f])/i;
const TRACEPARENT = /\b00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\b/;

// traceID finds the trace of an entry: a label or field named like a trace
// id (structured metadata first), else one written in the line.
export function traceID(e) {
  for (const src of [e.metadata, e.parsed, e.stream]) {
    for (const k of TRACE_KEYS) if (src[k] && /^[0-9a-fA-F]{16,32}$/.test(src[k])) return src[k].toLowerCase();
  }
  const m = TRACE_IN_LINE.exec(e.line) || TRACEPARENT.exec(e.line);
  return m ? m[1].toLowerCase() : '';
}

// levelOf: the entry's level, as Loki detects it.
export function levelOf(e) {
  return e.metadata.detected_level || e.stream.detected_level || e.parsed.detected_level || e.stream.level || e.parsed.level || '';
}

export function levelClass(level) {
  const l = String(level).toLowerCase();
  if (/^(err|error|fatal|critical|crit|panic|emerg|alert)/.test(l)) return 'err';
  if (/^warn/.test(l)) return 'warn';
  if (/^(info|notice)/.test(l)) return 'ok';
  return '';
}

// The stream labels shown on every row; the rest are in the details.
const BADGES = ['service', 'env', 'host', 'grade', 'source'];

function kv(title, labels, onFilter) {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return null;
  return h('section', null, h('h4', null, title),
    h('dl', { class: 'kv' }, keys.flatMap(k => [
      h('dt', null, k),
      h('dd', null, labels[k], onFilter ? h('button', {
        type: 'button', class: 'ghost logs-filter', title: `Keep only lines with ${k}="${labels[k]}"`,
        'aria-label': `filter ${k}="${labels[k]}"`, onclick: () => onFilter(k, labels[k]),
      }, '+') : null),
    ])));
}

// row renders one entry: a summary line that expands (click or Enter)
// into its fields. onFilter(name, value) adds a label filter to the query.
export function row(e, { onFilter } = {}) {
  const level = levelOf(e);
  const tid = traceID(e);
  // The fields are built on the first opening: a thousand rows stay light.
  let details = null;
  const toggle = h('button', { type: 'button', class: 'ghost logs-toggle', 'aria-expanded': 'false', 'aria-label': 'Show the fields of this line' }, '▸');
  const flip = () => {
    if (!details) {
      details = h('div', { class: 'logs-details', hidden: true },
        kv('Stream labels', e.stream, onFilter),
        kv('Structured metadata', e.metadata, onFilter),
        kv('Parsed fields', e.parsed, onFilter),
        h('div', { class: 'small muted' }, `timestamp ${e.ts} ns`));
      el.append(details);
    }
    const open = details.hidden;
    details.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    toggle.textContent = open ? '▾' : '▸';
    el.classList.toggle('open', open);
  };
  toggle.addEventListener('click', ev => { ev.stopPropagation(); flip(); });
  const badges = BADGES.filter(k => e.stream[k]).map(k => h('span', { class: 'badge', title: k }, `${k}=${e.stream[k]}`));
  const el = h('div', { class: 'logs-row', dataset: { ts: e.ts } },
    h('div', { class: 'logs-summary', onclick: ev => { if (!ev.target.closest('a,button') && !getSelection().toString()) flip(); } },
      toggle,
      h('time', { class: 'logs-time mono', datetime: new Date(e.ms).toISOString() }, fmtTime(e.ms)),
      level ? h('span', { class: `badge logs-level ${levelClass(level)}` }, level) : null,
      h('span', { class: 'logs-badges' }, badges),
      tid ? h('a', { class: 'logs-trace', href: traceLink(tid), title: `Trace ${tid}` }, `trace ${tid.slice(0, 8)}`) : null,
      h('span', { class: 'logs-line mono' }, e.line)));
  return el;
}

// levelColor gives the histogram's bar colour for a level.
export function levelColor(level, i) {
  const c = levelClass(level);
  if (c === 'err') return 'var(--err)';
  if (c === 'warn') return 'var(--warn)';
  if (c === 'ok') return 'var(--ok)';
  if (/^debug|^trace/i.test(level)) return 'var(--c6)';
  return `var(--c${(i % 8) + 1})`;
}
