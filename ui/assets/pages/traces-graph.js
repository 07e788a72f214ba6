// The service dependency graph (#/traces?view=graph&from=&to=): the
// caller → callee edges of /api/dependencies drawn as an SVG in layers by
// call depth, each edge labelled with its calls per second, error ratio
// and p99 latency from the span metrics (vigil_dependency_* in PromQL)
// when the metrics API answers, with its call count otherwise.
import { h, s, clear, fmtNumber, fmtPercent, fmtDuration } from '../lib/dom.js';
import { getJSON, errorBox, isAbort } from '../lib/api.js';
import { tracesLink, metricsLink } from '../lib/route.js';
import { range, rangePicker } from '../lib/time.js';
import { color } from '../lib/chart.js';

const NODE_W = 170, NODE_H = 34, COL_GAP = 200, ROW_GAP = 40, PAD = 16;

// layers assigns each service a column: its longest call depth from a
// service nobody calls (a cycle is cut where it is met again), and orders
// each column by the mean row of its callers to limit crossings.
export function layers(nodes, edges) {
  const out = new Map(nodes.map(n => [n, []]));
  const indeg = new Map(nodes.map(n => [n, 0]));
  for (const e of edges) { out.get(e.parent).push(e.child); if (e.parent !== e.child) indeg.set(e.child, indeg.get(e.child) + 1); }
  const depth = new Map();
  let starts = nodes.filter(n => indeg.get(n) === 0);
  if (!starts.length && nodes.length) starts = [nodes[0]];
  // Longest path by relaxation along DFS paths; a node already on the
  // current path is a cycle and is not followed again.
  for (const st of starts) {
    const stack = [[st, 0, new Set([st])]];
    while (stack.length) {
      const [n, d, path] = stack.pop();
      if ((depth.get(n) ?? -1) >= d) continue;
      depth.set(n, d);
      if (d > nodes.length) continue;
      for (const c of out.get(n)) if (!path.has(c)) stack.push([c, d + 1, new Set(path).add(c)]);
    }
  }
  for (const n of nodes) if (!depth.has(n)) depth.set(n, 0);
  const cols = [];
  for (const n of nodes) { const d = depth.get(n); (cols[d] = cols[d] || []).push(n); }
  const row = new Map();
  const callers = new Map(nodes.map(n => [n, []]));
  for (const e of edges) callers.get(e.child).push(e.parent);
  cols.forEach((col, d) => {
    if (!col) { cols[d] = []; return; }
    const key = n => {
      const rs = callers.get(n).filter(p => row.has(p)).map(p => row.get(p));
      return rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : Infinity;
    };
    col.sort((a, b) => key(a) - key(b) || (a < b ? -1 : 1));
    col.forEach((n, i) => row.set(n, i));
  });
  return { depth, row, cols };
}

// edgeMetrics asks PromQL for the rate, error ratio and p99 per edge over
// the range; null when the metrics API does not answer.
async function edgeMetrics(r, signal) {
  const w = `${Math.max(60, Math.round((r.end - r.start) / 1000))}s`;
  const by = 'sum by (parent, child)';
  const qs = {
    rate: `${by} (rate(vigil_dependency_calls_total[${w}]))`,
    errors: `${by} (rate(vigil_dependency_errors_total[${w}]))`,
    p99: `histogram_quantile(0.99, ${by} (rate(vigil_dependency_latency_seconds[${w}]))) or histogram_quantile(0.99, sum by (parent, child, le) (rate(vigil_dependency_latency_seconds_bucket[${w}])))`,
  };
  const time = (r.end / 1000).toFixed(3);
  const res = await Promise.all(Object.values(qs).map(query => getJSON('/api/v1/query', { query, time }, { signal })));
  const m = new Map();
  Object.keys(qs).forEach((k, i) => {
    for (const x of (res[i].data && res[i].data.result) || []) {
      const key = `${x.metric.parent}\u0000${x.metric.child}`;
      if (!m.has(key)) m.set(key, {});
      m.get(key)[k] = parseFloat(x.value[1]);
    }
  });
  return m;
}

// label: the lines written on an edge.
function label(e) {
  const mt = e.metrics;
  if (mt && Number.isFinite(mt.rate)) {
    const second = [];
    if (mt.rate > 0) second.push(`${fmtPercent((mt.errors || 0) / mt.rate)} err`);
    if (Number.isFinite(mt.p99)) second.push(`p99 ${fmtDuration(mt.p99 * 1000)}`);
    return [`${fmtNumber(mt.rate)}/s`, second.join(' · ')].filter(Boolean);
  }
  return [`${fmtNumber(e.callCount)} calls`];
}

function draw(deps, nodes) {
  const { row, cols, depth } = layers(nodes, deps);
  const maxRows = Math.max(1, ...cols.map(c => c.length));
  const width = PAD * 2 + cols.length * NODE_W + (cols.length - 1) * COL_GAP;
  const height = PAD * 2 + maxRows * NODE_H + (maxRows - 1) * ROW_GAP + 20;
  const pos = n => {
    const col = cols[depth.get(n)];
    const off = (maxRows - col.length) * (NODE_H + ROW_GAP) / 2;
    return { x: PAD + depth.get(n) * (NODE_W + COL_GAP), y: PAD + 10 + off + row.get(n) * (NODE_H + ROW_GAP) };
  };
  const edgeG = s('g', { class: 'dg-edges' }), labelG = s('g', { class: 'dg-labels' }), nodeG = s('g', { class: 'dg-nodes' });
  deps.forEach(e => {
    const a = pos(e.parent), b = pos(e.child);
    const err = e.metrics && e.metrics.rate > 0 && e.metrics.errors > 0;
    let d, lx, ly;
    if (e.parent === e.child) {
      d = `M${a.x + NODE_W - 30},${a.y} c0,-26 40,-26 30,${NODE_H / 2}`; lx = a.x + NODE_W; ly = a.y - 16;
    } else {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      const back = x2 <= x1;
      const cx = back ? Math.max(60, Math.abs(x1 - x2) / 3) : (x2 - x1) / 2;
      d = back ? `M${x1},${y1} C${x1 + cx},${y1 - 80} ${x2 - cx},${y2 - 80} ${x2},${y2}` : `M${x1},${y1} C${x1 + cx},${y1} ${x2 - cx},${y2} ${x2},${y2}`;
      lx = (x1 + x2) / 2; ly = (y1 + y2) / 2 - (back ? 60 : 4);
    }
    const lines = label(e);
    const title = `${e.parent} → ${e.child}: ${fmtNumber(e.callCount)} calls${e.metrics ? ' · ' + lines.join(' · ') : ''}`;
    edgeG.append(s('path', { d, class: 'dg-edge' + (err ? ' dg-err' : ''), 'marker-end': 'url(#dg-arrow)' }, s('title', null, title)));
    labelG.append(s('text', { x: lx, y: ly - (lines.length - 1) * 12, 'text-anchor': 'middle', class: 'dg-label' + (err ? ' dg-err' : '') },
      lines.map((l, k) => s('tspan', { x: lx, dy: k ? 13 : 0 }, l))));
  });
  nodes.forEach((n, i) => {
    const { x, y } = pos(n);
    const a = s('a', { href: tracesLink(n), class: 'dg-node' },
      s('rect', { x, y, width: NODE_W, height: NODE_H, rx: 5, style: `stroke: ${color(i)}` }),
      s('text', { x: x + NODE_W / 2, y: y + NODE_H / 2 + 4, 'text-anchor': 'middle' }, n.length > 22 ? n.slice(0, 21) + '…' : n),
      s('title', null, `${n}: search its traces`));
    nodeG.append(a);
  });
  const defs = s('defs', null, s('marker', { id: 'dg-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'dg-arrowhead' })));
  return s('svg', { class: 'dep-graph', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'service dependency graph' },
    defs, edgeG, labelG, nodeG);
}

export function renderGraph(view, ctx) {
  const p = ctx.params;
  const r = range(p, 'now-1h');
  view.append(h('div', { class: 'toolbar' },
    rangePicker(p, v => ctx.navigate('traces', [], { view: 'graph', ...v })),
    h('span', { class: 'muted small' }, 'Caller → callee, from the spans stored in the range.')));
  const out = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  view.append(out);
  (async () => {
    let deps;
    try {
      const res = await getJSON('/api/dependencies', { endTs: Math.round(r.end), lookback: Math.max(1, Math.round(r.end - r.start)) }, { signal: ctx.signal });
      deps = res.data || [];
    } catch (err) { if (!isAbort(err)) clear(out, errorBox(err)); return; }
    if (!deps.length) { clear(out, h('p', { class: 'empty' }, 'No calls between services in this range.')); return; }
    let note = null;
    try {
      const m = await edgeMetrics(r, ctx.signal);
      for (const e of deps) e.metrics = m.get(`${e.parent}\u0000${e.child}`) || null;
    } catch (err) {
      if (isAbort(err)) return;
      note = h('p', { class: 'muted small' }, `Edges show call counts: the metrics API did not answer (${err.message}).`);
    }
    const nodes = [...new Set(deps.flatMap(e => [e.parent, e.child]))].sort();
    clear(out, note, h('div', { class: 'panel dep-graph-wrap' }, draw(deps, nodes)),
      h('table', { class: 'dep-table' }, h('thead', null, h('tr', null,
        h('th', null, 'Caller'), h('th', null, 'Callee'), h('th', { class: 'num' }, 'Calls'), h('th', { class: 'num' }, 'Calls/s'),
        h('th', { class: 'num' }, 'Errors'), h('th', { class: 'num' }, 'p99'))),
      h('tbody', null, deps.map(e => {
        const mt = e.metrics || {};
        return h('tr', { class: 'dep-edge' },
          h('td', null, h('a', { href: tracesLink(e.parent) }, e.parent)), h('td', null, h('a', { href: tracesLink(e.child) }, e.child)),
          h('td', { class: 'num' }, fmtNumber(e.callCount)),
          h('td', { class: 'num' }, Number.isFinite(mt.rate) ? fmtNumber(mt.rate) : '–'),
          h('td', { class: 'num' }, mt.rate > 0 ? fmtPercent((mt.errors || 0) / mt.rate) : '–'),
          h('td', { class: 'num' }, Number.isFinite(mt.p99) ? fmtDuration(mt.p99 * 1000) : '–'));
      }))),
      h('p', { class: 'small' }, h('a', { href: metricsLink({ query: 'sum by (parent, child) (rate(vigil_dependency_calls_total[5m]))' }) }, 'These edges in the metrics explorer')));
  })();
}
