// Links between pages. Every page builds its links with link() so that a
// route is written one way: #/<page>/<path…>?<params>.

// link('trace', [id], {span: 'ab'}) → "#/trace/<id>?span=ab". params may be
// an object (arrays repeat the key; empty values are left out) or
// URLSearchParams.
export function link(page, path = [], params = {}) {
  const segs = [page, ...path].filter(x => x !== undefined && x !== null && x !== '').map(encodeURIComponent);
  const q = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params || {});
  for (const [k, v] of entries) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach(x => q.append(k, x));
    else q.append(k, v);
  }
  const qs = q.toString();
  return `#/${segs.join('/')}${qs ? '?' + qs : ''}`;
}

// Links other pages make into a signal, kept here so that the page that
// owns a route and the pages that point at it agree on its parameters.

// logsLink: the Logs page with a LogQL query over a range.
export function logsLink(query, { from, to } = {}) { return link('logs', [], { query, from, to }); }

// traceLink: one trace, optionally with a span selected.
export function traceLink(traceID, spanID) { return link('trace', [traceID], { span: spanID }); }

// tracesLink: the trace search for a service (and operation).
export function tracesLink(service, { operation, from, to, tags } = {}) { return link('traces', [], { service, operation, from, to, tags }); }

// metricsLink: the metrics explorer with a PromQL query, or a service's golden signals.
export function metricsLink({ query, service, from, to } = {}) { return link('metrics', [], { query, service, from, to }); }

// profilesLink: a flame graph for a Pyroscope selector, e.g.
// process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"}.
export function profilesLink({ query, from, to } = {}) { return link('profiles', [], { query, from, to }); }

// dumpsLink: the issue list with filters; issueLink: one issue.
export function dumpsLink(filters = {}) { return link('dumps', [], filters); }
export function issueLink(issueID, params = {}) { return link('dumps', [issueID], params); }
