// Home: every service by grade with its golden signals (rate, error
// ratio, p99 latency, the last hour's rate as a sparkline) and what is
// wrong now — firing alerts and new or regressed dump issues — each
// linking to the service's traces, logs, metrics, profiles and dumps.
import { h, clear, fmtNumber, fmtPercent, fmtDuration, fmtAgo } from '../lib/dom.js';
import { getJSON, errorBox, isAbort, ApiError } from '../lib/api.js';
import { sparkline } from '../lib/chart.js';
import { tracesLink, logsLink, metricsLink, profilesLink, dumpsLink, issueLink } from '../lib/route.js';
import { discover, anyOf, signalOf, instant, rangeQuery, esc, rank } from '../lib/golden.js';

const REFRESH_MS = 60e3;
const ISSUE_WINDOW_MS = 24 * 3600e3; // "new": first seen within it
const MAX_ISSUES = 20;
const MAX_ALERTS = 30;

export function render(view, ctx) {
  const { signal } = ctx;
  const status = h('span', { class: 'muted small' });
  const refresh = h('button', { type: 'button', class: 'ghost', onclick: () => load() }, 'Refresh');
  const wrong = h('section', { 'aria-label': 'What is wrong now' });
  const services = h('section', { 'aria-label': 'Services' });
  const root = h('div', { class: 'home' },
    h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Services'), status, refresh), wrong, services);
  view.append(root);

  let busy = false;
  async function load() {
    if (busy || signal.aborted) return;
    busy = true;
    refresh.disabled = true;
    try {
      const data = await fetchAll(signal);
      if (signal.aborted) return;
      clear(wrong, renderWrong(data));
      clear(services, renderServices(data));
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      if (!root.dataset.loaded) {
        root.dataset.loaded = '1';
        performance.mark('vigil-home-ready');
      }
    } catch (err) {
      if (!isAbort(err)) clear(services, errorBox(err));
    } finally {
      busy = false;
      refresh.disabled = false;
    }
  }
  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

// fetchAll reads the four sources at once; each may fail on its own (a
// query daemon without the federation answers 404 for the Prometheus API)
// and the page shows what the others gave.
async function fetchAll(signal) {
  const soft = p => p.then(v => ({ v }), err => { if (isAbort(err)) throw err; return { err }; });
  const [svc, metrics, alerts, issues] = await Promise.all([
    soft(getJSON('/api/services', null, { signal })),
    soft(golden(signal)),
    soft(getJSON('/api/v1/alerts', null, { signal })),
    soft(getJSON('/vigil/api/v1/dumps/issues', { status: 'unresolved', statsPeriod: '24h', limit: 200 }, { signal })),
  ]);
  return { svc, metrics, alerts, issues };
}

// golden reads every service's recorded signals: rate, error ratio and
// p99 now, and the rate over the last hour.
async function golden(signal) {
  const now = Date.now();
  const signals = await discover({ signal, start: now - 3600e3 });
  if (!signals.length) return { signals, series: [] };
  const [rate, errors, p99, spark] = await Promise.all([
    instant(anyOf('service_grade', signals, 'requests:rate'), { signal, time: now }),
    instant(anyOf('service_grade', signals, 'errors:ratio_rate'), { signal, time: now }),
    instant(anyOf('service_grade', signals, 'request_duration_seconds:p99_rate'), { signal, time: now }),
    rangeQuery(anyOf('service_grade', signals, 'requests:rate'), now - 3600e3, now, 60, { signal }),
  ]);
  // One entry per service, grade and signal.
  const by = new Map();
  const entry = m => {
    const s = signalOf(m.__name__, signals);
    if (!s || !m.service) return null;
    const k = `${m.service}\u0000${m.grade || ''}\u0000${s.signal}`;
    if (!by.has(k)) by.set(k, { service: m.service, grade: m.grade || '', signal: s.signal, spark: [] });
    return by.get(k);
  };
  for (const r of rate.result || []) { const e = entry(r.metric); if (e) e.rate = parseFloat(r.value[1]); }
  for (const r of errors.result || []) { const e = entry(r.metric); if (e) e.errors = parseFloat(r.value[1]); }
  for (const r of p99.result || []) { const e = entry(r.metric); if (e) e.p99 = parseFloat(r.value[1]); }
  for (const r of spark.result || []) {
    const e = entry(r.metric);
    if (e) e.spark = r.values.map(([t, v]) => [t * 1000, parseFloat(v)]);
  }
  return { signals, series: [...by.values()] };
}

// rows merges the sources into one row per service and grade: the
// preferred signal's values (the SDK's server metrics before spans), the
// service's alerts and issues; services known only from traces, alerts or
// dumps are rows without signals.
function rows(data) {
  const out = new Map();
  const row = (service, grade) => {
    const k = `${service}\u0000${grade}`;
    if (!out.has(k)) out.set(k, { service, grade, signals: [], alerts: [], issues: [] });
    return out.get(k);
  };
  for (const e of (data.metrics.v && data.metrics.v.series) || []) row(e.service, e.grade).signals.push(e);
  for (const r of out.values()) r.signals.sort((a, b) => rank(a.signal) - rank(b.signal));
  const gradesOf = service => [...out.values()].filter(r => r.service === service);
  const attach = (service, grade, f) => {
    const same = gradesOf(service);
    const r = same.find(x => String(x.grade) === String(grade || '')) || same[0] || row(service, grade ? String(grade) : '');
    f(r);
  };
  for (const a of alertList(data)) if (a.labels.service) attach(a.labels.service, a.labels.grade, r => r.alerts.push(a));
  for (const is of issueList(data)) attach(is.service, is.grade, r => r.issues.push(is));
  for (const s of (data.svc.v && data.svc.v.data) || []) if (!gradesOf(s).length) row(s, '');
  return [...out.values()];
}

function notFound(err) { return err instanceof ApiError && err.status === 404; }

function alertList(data) {
  const list = (data.alerts.v && data.alerts.v.data && data.alerts.v.data.alerts) || [];
  return list.filter(a => a.state === 'firing' || a.state === 'pending')
    .sort((a, b) => (a.state === 'firing' ? 0 : 1) - (b.state === 'firing' ? 0 : 1) || String(a.activeAt).localeCompare(String(b.activeAt)));
}

// issueList keeps the issues that are new (first seen in the last day) or
// regressed (seen again after being resolved).
function issueList(data) {
  const now = Date.now();
  return ((data.issues.v && data.issues.v.issues) || [])
    .filter(is => is.regressed_at > 0 || is.first_seen / 1e6 >= now - ISSUE_WINDOW_MS)
    .map(is => ({ ...is, kind: is.regressed_at > 0 ? 'regressed' : 'new' }));
}

function renderWrong(data) {
  const alerts = alertList(data);
  const issues = issueList(data);
  const out = [h('h2', null, 'What is wrong now')];
  // No Prometheus API on this port (404) is said once, under the services.
  const alertsErr = notFound(data.alerts.err) ? null : data.alerts.err;
  if (alertsErr) out.push(errorBox(alertsErr));
  if (data.issues.err) out.push(errorBox(data.issues.err));
  if (!alerts.length && !issues.length && !alertsErr && !data.issues.err) {
    out.push(h('p', { class: 'empty' }, 'No firing alert, no new or regressed dump issue in the last 24 hours.'));
    return out;
  }
  if (alerts.length) {
    out.push(h('h3', null, `Alerts (${alerts.length})`), h('ul', { class: 'home-list', 'data-kind': 'alerts' }, alerts.slice(0, MAX_ALERTS).map(a => {
      const l = a.labels;
      return h('li', { class: 'home-alert', dataset: { state: a.state } },
        h('span', { class: `badge ${a.state === 'firing' ? 'err' : 'warn'}` }, a.state),
        l.severity ? h('span', { class: 'badge' }, l.severity) : null, ' ',
        h('strong', null, l.alertname || 'alert'), ' ',
        l.service ? h('a', { href: metricsLink({ service: l.service }) }, l.service) : null,
        l.grade ? h('span', { class: 'muted' }, ` grade ${l.grade}`) : null,
        a.annotations && a.annotations.summary ? h('span', null, ' — ', a.annotations.summary) : null,
        a.activeAt ? h('span', { class: 'muted small' }, ` since ${fmtAgo(Date.parse(a.activeAt))}`) : null);
    })), alerts.length > MAX_ALERTS ? h('p', { class: 'muted small' }, `${alerts.length - MAX_ALERTS} more`) : null);
  }
  if (issues.length) {
    out.push(h('h3', null, `Dump issues (${issues.length})`), h('ul', { class: 'home-list', 'data-kind': 'issues' }, issues.slice(0, MAX_ISSUES).map(is =>
      h('li', { class: 'home-issue' },
        h('span', { class: `badge ${is.kind === 'regressed' ? 'err' : 'warn'}` }, is.kind), ' ',
        h('a', { href: issueLink(is.id) }, is.title || `issue ${is.id}`), ' ',
        h('span', { class: 'muted' }, 'in '), h('a', { href: dumpsLink({ service: is.service }) }, is.service),
        is.culprit ? h('span', { class: 'muted small' }, ` ${is.culprit}`) : null,
        h('span', { class: 'muted small' }, ` · ${fmtNumber(is.count)} events · last ${fmtAgo(is.last_seen / 1e6)}`)))),
    issues.length > MAX_ISSUES ? h('p', null, h('a', { href: dumpsLink({ status: 'unresolved' }) }, `${issues.length - MAX_ISSUES} more issues`)) : null);
  }
  return out;
}

function renderServices(data) {
  const out = [];
  const m = data.metrics;
  if (notFound(m.err)) {
    out.push(h('p', { class: 'home-note muted', role: 'note' },
      'Metrics are not configured on this port: ', h('code', null, m.err.url.split('?')[0]), ' answered 404. ',
      'The golden signals come from the federation (all-in-one, or vigil federation with the query port pointed at it); the services below are those of the traces.'));
  } else if (m.err) {
    out.push(errorBox(m.err));
  } else if (!m.v.signals.length) {
    out.push(h('p', { class: 'home-note muted', role: 'note' },
      'No golden-signal series recorded in the last hour: scrape services instrumented with the SDK, or send spans (docs/metrics-golden.md).'));
  }
  if (data.svc.err && !notFound(data.svc.err)) out.push(errorBox(data.svc.err));
  const all = rows(data);
  if (!all.length) {
    out.push(h('p', { class: 'empty' }, 'No service yet: nothing has sent spans, metrics or dumps.'));
    return out;
  }
  const grades = [...new Set(all.map(r => r.grade))].sort((a, b) => (a === '' ? 1 : 0) - (b === '' ? 1 : 0) || String(a).localeCompare(String(b), undefined, { numeric: true }));
  for (const g of grades) {
    const list = all.filter(r => r.grade === g).sort((a, b) => a.service.localeCompare(b.service));
    out.push(h('h2', null, g === '' ? 'No grade' : `Grade ${g}`, h('span', { class: 'muted small' }, ` · ${list.length} service${list.length === 1 ? '' : 's'}`)),
      h('table', { class: 'home-services', dataset: { grade: g } },
        h('thead', null, h('tr', null, h('th', null, 'Service'), h('th', { class: 'num' }, 'Rate'), h('th', { class: 'num' }, 'Errors'),
          h('th', { class: 'num' }, 'p99'), h('th', null, 'Last hour'), h('th', null, 'Now'), h('th', null, 'Go to'))),
        h('tbody', null, list.map(serviceRow))));
  }
  return out;
}

function serviceRow(r) {
  const s = r.signals[0];
  const firing = r.alerts.filter(a => a.state === 'firing').length;
  const pending = r.alerts.length - firing;
  const sel = `{service="${esc(r.service)}"}`;
  return h('tr', { class: 'home-service', dataset: { service: r.service, grade: r.grade, signal: s ? s.signal : '' } },
    h('td', null, h('a', { class: 'home-name', href: metricsLink({ service: r.service }) }, r.service),
      s ? h('div', { class: 'muted small' }, `from ${s.signal}${r.signals.length > 1 ? ` (also ${r.signals.slice(1).map(x => x.signal).join(', ')})` : ''}`)
        : h('div', { class: 'muted small' }, 'no metrics')),
    h('td', { class: 'num home-rate' }, s && s.rate !== undefined ? `${fmtNumber(s.rate)}/s` : '–'),
    h('td', { class: `num home-errors${s && s.errors > 0 ? ' home-bad' : ''}`, dataset: { value: s && s.errors !== undefined ? String(s.errors) : '' } },
      s && s.errors !== undefined ? fmtPercent(s.errors) : '–'),
    h('td', { class: 'num home-p99' }, s && Number.isFinite(s.p99) ? fmtDuration(s.p99 * 1000) : '–'),
    h('td', null, s && s.spark.length ? sparkline(s.spark, { title: `${r.service}: requests per second, last hour` }) : null),
    h('td', null,
      firing ? h('span', { class: 'badge err' }, `${firing} firing`) : null,
      pending ? h('span', { class: 'badge warn' }, `${pending} pending`) : null, ' ',
      r.issues.length ? h('a', { class: 'badge warn', href: dumpsLink({ service: r.service }) }, `${r.issues.length} issue${r.issues.length === 1 ? '' : 's'}`) : null,
      !firing && !pending && !r.issues.length ? h('span', { class: 'muted' }, 'ok') : null),
    h('td', { class: 'home-links small' },
      h('a', { href: tracesLink(r.service) }, 'traces'), ' · ',
      h('a', { href: logsLink(sel) }, 'logs'), ' · ',
      h('a', { href: metricsLink({ service: r.service }) }, 'metrics'), ' · ',
      h('a', { href: profilesLink({ query: `process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="${esc(r.service)}"}` }) }, 'profiles'), ' · ',
      h('a', { href: dumpsLink({ service: r.service }) }, 'dumps')));
}
