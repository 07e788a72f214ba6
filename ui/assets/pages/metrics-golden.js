// The golden-signals dashboard: traffic, errors, latency and saturation
// of the recorded series (federation/golden) per grade, per service and
// per datacenter, with the selectors of deploy/grafana's dashboard
// (signal, grade, service, datacenter; empty is all).
import { h, clear, fmtNumber, fmtPercent, fmtDuration, fmtBytes } from '../lib/dom.js';
import { getJSON, errorBox, isAbort, ApiError } from '../lib/api.js';
import { lineChart, promSeries } from '../lib/chart.js';
import { range, rangePicker, stepFor } from '../lib/time.js';
import { link, tracesLink, logsLink, profilesLink, dumpsLink } from '../lib/route.js';
import { discover, name, processName, rangeQuery, esc, regexEsc } from '../lib/golden.js';

const seconds = v => fmtDuration(v * 1000);

export async function renderGolden(view, ctx) {
  const p = ctx.params;
  const sel = { service: p.get('service') || '', grade: p.get('grade') || '', dc: p.get('dc') || '', signal: p.get('signal') || '' };
  const r = range(p, 'now-1h');
  const step = p.get('step') || String(stepFor(r.start, r.end, 120));
  const go = changes => ctx.navigate('metrics', ['golden'], { ...sel, from: r.from, to: r.to, step: p.get('step'), ...changes });
  const body = h('div', { class: 'metrics-golden' });
  view.append(body);

  let signals;
  try {
    signals = await discover({ signal: ctx.signal, start: r.start, matchers: sel.service ? `service="${esc(sel.service)}"` : '' });
  } catch (err) {
    if (isAbort(err)) return;
    if (err instanceof ApiError && err.status === 404) {
      body.append(h('p', { class: 'home-note muted', role: 'note' }, 'Metrics are not configured on this port: ', h('code', null, err.url.split('?')[0]), ' answered 404.'));
    } else body.append(errorBox(err));
    return;
  }
  if (!signals.length) {
    body.append(h('p', { class: 'empty' }, sel.service
      ? `No golden-signal series of ${sel.service} in this range.`
      : 'No golden-signal series in this range: scrape services instrumented with the SDK, or send spans (docs/metrics-golden.md).'),
    h('div', { class: 'toolbar' }, rangePicker(p, ({ from, to }) => go({ from, to }))));
    return;
  }
  const s = signals.find(x => x.signal === sel.signal) || signals[0];
  const requests = name('service_grade', s, 'requests:rate');
  const gradeRe = sel.grade ? regexEsc(sel.grade) : '.*';
  const serviceRe = sel.service ? regexEsc(sel.service) : '.*';
  const dcRe = sel.dc ? regexEsc(sel.dc) : '.*';

  // The selectors' values, as Grafana's label_values variables.
  const values = (label, match) => getJSON(`/api/v1/label/${label}/values`, { 'match[]': match, start: (r.start / 1000).toFixed(0), end: (r.end / 1000).toFixed(0) }, { signal: ctx.signal })
    .then(x => x.data || [], err => { if (isAbort(err)) throw err; return []; });
  let grades, services, dcs;
  try {
    [grades, services, dcs] = await Promise.all([
      values('grade', requests),
      values('service', `${requests}{grade=~"${gradeRe}"}`),
      values('dc', `${name('service_grade_dc', s, 'requests:rate')}{grade=~"${gradeRe}",service=~"${serviceRe}"}`),
    ]);
  } catch (err) { return; }

  const select = (label, key, opts, current) => h('label', null, label, h('select', {
    'aria-label': label, dataset: { param: key }, onchange: ev => go({ [key]: ev.target.value }),
  }, key === 'signal' ? null : h('option', { value: '' }, 'All'),
  [...new Set([...opts, current].filter(Boolean))].map(v => h('option', { value: v, selected: v === current }, v))));
  body.append(h('div', { class: 'toolbar' },
    select('Signal', 'signal', signals.map(x => x.signal), s.signal),
    select('Grade', 'grade', grades, sel.grade),
    select('Service', 'service', services, sel.service),
    select('Datacenter', 'dc', dcs, sel.dc),
    rangePicker(p, ({ from, to }) => go({ from, to }))));
  if (sel.service) {
    body.append(h('p', { class: 'small' }, h('strong', null, sel.service), ': ',
      h('a', { href: tracesLink(sel.service) }, 'traces'), ' · ',
      h('a', { href: logsLink(`{service="${esc(sel.service)}"}`) }, 'logs'), ' · ',
      h('a', { href: profilesLink({ query: `process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="${esc(sel.service)}"}` }) }, 'profiles'), ' · ',
      h('a', { href: dumpsLink({ service: sel.service }) }, 'dumps')));
  }

  const gSel = `{grade=~"${gradeRe}"}`;
  const sSel = `{grade=~"${gradeRe}",service=~"${serviceRe}"}`;
  const dSel = `{grade=~"${gradeRe}",service=~"${serviceRe}",dc=~"${dcRe}"}`;
  const L = (level, metric) => name(level, s, metric);
  const q = (expr, by, suffix = '') => ({ expr, by, suffix });
  const sections = [];
  if (!sel.service) {
    sections.push(['All grades', [
      panel('Request rate by grade', fmtNumber, [q(L('grade', 'requests:rate') + gSel, ['grade'])]),
      panel('Error ratio by grade', fmtPercent, [q(L('grade', 'errors:ratio_rate') + gSel, ['grade'])]),
      panel('p99 latency by grade', seconds, [q(L('grade', 'request_duration_seconds:p99_rate') + gSel, ['grade'])]),
    ]]);
  }
  const bySvc = ['service'], byDC = ['service', 'dc'];
  sections.push([sel.service ? `${sel.service}, all datacenters` : 'Per service, all datacenters', [
    panel('Request rate', fmtNumber, [q(L('service_grade', 'requests:rate') + sSel, bySvc)]),
    panel('Error ratio', fmtPercent, [q(L('service_grade', 'errors:ratio_rate') + sSel, bySvc)]),
    panel('Latency p50 / p90 / p99', seconds, ['p50', 'p90', 'p99'].map(x => q(L('service_grade', `request_duration_seconds:${x}_rate`) + sSel, bySvc, x))),
    panel('In-flight requests', fmtNumber, [q(L('service_grade', 'inflight_requests:avg') + sSel, bySvc)]),
    panel('CPU', fmtPercent, [q(processName('service_grade', 'process_cpu_utilisation:ratio_rate', s) + sSel, bySvc)]),
    panel('Memory', fmtBytes, [q(processName('service_grade', 'process_resident_memory_bytes:sum', s) + sSel, bySvc, 'resident'),
      q(processName('service_grade', 'go_memstats_heap_inuse_bytes:sum', s) + sSel, bySvc, 'heap')]),
  ]]);
  sections.push(['Per datacenter', [
    panel('Request rate per datacenter', fmtNumber, [q(L('service_grade_dc', 'requests:rate') + dSel, byDC)]),
    panel('Error ratio per datacenter', fmtPercent, [q(L('service_grade_dc', 'errors:ratio_rate') + dSel, byDC)]),
    panel('p99 latency per datacenter', seconds, [q(L('service_grade_dc', 'request_duration_seconds:p99_rate') + dSel, byDC)]),
  ]]);
  for (const [title, panels] of sections) body.append(h('h2', null, title), h('div', { class: 'grid metrics-panels' }, panels.map(x => x.el)));
  await Promise.all(sections.flatMap(([, panels]) => panels.map(x => x.load())));
  if (!ctx.signal.aborted) body.dataset.loaded = '1';

  // panel: a chart of one or more range queries, each {expr, by: the
  // labels naming its series, suffix: added to the names}.
  function panel(title, yFormat, queries) {
    const content = h('div', { class: 'muted small' }, 'Loading…');
    const el = h('div', { class: 'panel metrics-panel', dataset: { title } },
      h('div', { class: 'row' }, h('h3', { class: 'grow' }, title),
        h('a', { class: 'small', href: link('metrics', [], { query: queries[0].expr, from: r.from, to: r.to }), title: 'Open in the explorer' }, 'explore')),
      content);
    async function load() {
      try {
        const results = await Promise.all(queries.map(x => rangeQuery(x.expr, r.start, r.end, step, { signal: ctx.signal })));
        const series = results.flatMap((d, i) => promSeries(d.result, queries[i].by).map(x => ({
          ...x, name: `${queries[i].by[0] === 'grade' ? 'grade ' : ''}${x.name}${queries[i].suffix ? ' ' + queries[i].suffix : ''}`,
        })));
        clear(content, series.length ? lineChart({ series: series.slice(0, 50), start: r.start, end: r.end, height: 320, yFormat })
          : h('p', { class: 'empty' }, 'No data.'),
        // lineChart has a legend for two series or more; name a lone one too.
        series.length === 1 ? h('div', { class: 'legend' }, series[0].name) : null);
        el.dataset.series = String(series.length);
      } catch (err) {
        if (!isAbort(err)) clear(content, errorBox(err));
      }
    }
    return { el, load };
  }
}
