// A Jaeger trace (the JSON of /api/traces) as the Traces pages use it: the
// span tree in display order, the per-trace summary of the search results,
// and the critical path.

// isError: a span with the tag error=true (OTLP status ERROR), as Jaeger's
// UI counts errors.
export function isError(span) {
  for (const t of span.tags || []) if (t.key === 'error' && (t.value === true || t.value === 'true')) return true;
  return false;
}

// parentOf: the first reference's span id (the parent is the first CHILD_OF
// reference, else a FOLLOWS_FROM one), or '' for a root.
function parentOf(span) {
  const refs = span.references || [];
  const r = refs.find(r => r.refType === 'CHILD_OF') || refs[0];
  return r ? r.spanID : '';
}

// model builds the tree of a trace. Every span gets: service, start/end
// (µs), depth, parent (span or null), children (sorted by start), error.
// rows is the depth-first order the waterfall shows; size[i] is the number
// of rows in the subtree of rows[i] (itself included), so the descendants of
// a row are the next size-1 rows. Spans whose parent is not in the trace
// are roots too, as in Jaeger's UI.
export function model(trace) {
  const procs = trace.processes || {};
  const byID = new Map();
  const spans = trace.spans || [];
  let start = Infinity, end = -Infinity;
  for (const sp of spans) {
    const p = procs[sp.processID] || {};
    const node = {
      span: sp, id: sp.spanID, service: p.serviceName || 'unknown', process: p,
      start: sp.startTime, end: sp.startTime + (sp.duration || 0),
      error: isError(sp), children: [], parent: null, depth: 0,
    };
    byID.set(sp.spanID, node);
    if (node.start < start) start = node.start;
    if (node.end > end) end = node.end;
  }
  const roots = [];
  for (const n of byID.values()) {
    const pid = parentOf(n.span);
    const p = pid && pid !== n.id ? byID.get(pid) : null;
    if (p) { n.parent = p; p.children.push(n); } else roots.push(n);
  }
  const byStart = (a, b) => a.start - b.start || (a.span.operationName < b.span.operationName ? -1 : 1);
  roots.sort(byStart);
  // Depth-first order with an explicit stack: a trace may be deep.
  const rows = [], size = [];
  const stack = roots.slice().reverse().map(n => ({ n, depth: 0 }));
  while (stack.length) {
    const { n, depth, close } = stack.pop();
    if (close !== undefined) { size[close] = rows.length - close; continue; }
    n.depth = depth;
    const i = rows.length;
    rows.push(n);
    n.row = i;
    stack.push({ close: i });
    if (n.children.length > 1) n.children.sort(byStart);
    for (let k = n.children.length - 1; k >= 0; k--) stack.push({ n: n.children[k], depth: depth + 1 });
  }
  // A cycle in the references would leave spans out of rows: list them as roots.
  if (rows.length < byID.size) {
    for (const n of byID.values()) if (n.row === undefined) { n.parent = null; n.depth = 0; n.row = rows.length; rows.push(n); size.push(1); }
  }
  const services = [...new Set(rows.map(n => n.service))];
  return {
    traceID: trace.traceID, byID, roots, rows, size, services,
    start, end, duration: spans.length ? end - start : 0,
    root: roots[0] || null,
    errors: rows.reduce((k, n) => k + (n.error ? 1 : 0), 0),
  };
}

// summary: what the search results list shows of a trace, without
// building the whole tree: the root span (no parent in the trace, earliest
// first), span count, errors, duration and start (µs), services.
export function summary(trace) {
  const ids = new Set((trace.spans || []).map(s => s.spanID));
  const procs = trace.processes || {};
  let root = null, start = Infinity, end = -Infinity, errors = 0;
  const services = new Map();
  for (const sp of trace.spans || []) {
    const pid = parentOf(sp);
    if ((!pid || !ids.has(pid)) && (!root || sp.startTime < root.startTime)) root = sp;
    start = Math.min(start, sp.startTime);
    end = Math.max(end, sp.startTime + (sp.duration || 0));
    if (isError(sp)) errors++;
    const svc = (procs[sp.processID] || {}).serviceName || 'unknown';
    services.set(svc, (services.get(svc) || 0) + 1);
  }
  return {
    traceID: trace.traceID, spans: (trace.spans || []).length, errors, services,
    rootService: root ? (procs[root.processID] || {}).serviceName || 'unknown' : '',
    rootOperation: root ? root.operationName : '',
    start, duration: Number.isFinite(start) ? end - start : 0,
  };
}

// criticalPath returns the segments [{node, from, to}] (µs) of the chain
// of work that determines the trace's end-to-end latency, as Jaeger's UI
// computes it: start at the root's end with a cursor; among the span's
// children (clipped to the span's own interval), take the last one to
// finish at or before the cursor; the parent's time between that child's
// end and the cursor is on the path, the child is walked the same way up to
// its end, and the cursor moves to the child's start. Children that end
// after the cursor ran in parallel with a later part of the path and are
// skipped. When no child is left, the parent's time from its start to the
// cursor is on the path. A span is on the critical path when it has a
// segment. O(n log n); iterative, so a deep trace cannot overflow the stack.
export function criticalPath(m) {
  const segs = [];
  if (!m.root) return segs;
  const work = [{ n: m.root, lo: m.root.start, hi: m.root.end }];
  while (work.length) {
    const { n, lo, hi } = work.pop();
    let c = hi;
    if (!n.children.length) { if (c > lo) segs.push({ node: n, from: lo, to: c }); continue; }
    const kids = n.children
      .map(k => ({ k, s: Math.max(k.start, lo), e: Math.min(k.end, hi) }))
      .filter(x => x.e >= x.s)
      .sort((a, b) => b.e - a.e);
    for (const x of kids) {
      if (c <= lo) break;
      if (x.e > c) continue;
      if (x.e < c) segs.push({ node: n, from: x.e, to: c });
      work.push({ n: x.k, lo: x.s, hi: x.e });
      c = x.s;
    }
    if (c > lo) segs.push({ node: n, from: lo, to: c });
  }
  return segs;
}
