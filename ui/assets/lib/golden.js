// The golden signals as the federation records them (federation/golden,
// docs/metrics-golden.md): <level>:<signal>_<metric>:<op><window>, e.g.
// service_grade:vigil_http_errors:ratio_rate5m. The signals and the rate
// window are read from the TSDB's own metric names rather than assumed,
// so custom conventions (--federation.golden-conventions) show too.
import { getJSON, postForm } from './api.js';

const REQUESTS = /^service_grade:(.+)_requests:rate(\d[0-9smhdwy]*)$/;

// esc quotes a label value for a PromQL matcher.
export function esc(v) { return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"'); }

// regexEsc escapes a value for a PromQL regular expression matcher.
export function regexEsc(v) { return esc(String(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')); }

// rank orders signals: server-side signals of the SDK first, then other
// conventions, then spans, then the client side (calls out, not requests).
export function rank(signal) {
  if (signal === 'vigil_http') return 0;
  if (signal === 'vigil_grpc') return 1;
  if (signal === 'spans') return 3;
  if (/_client$/.test(signal)) return 4;
  return 2;
}

export function sortSignals(list) {
  return [...list].sort((a, b) => rank(a.signal) - rank(b.signal) || a.signal.localeCompare(b.signal));
}

// discover returns the recorded signals [{signal, window}] seen since
// start (epoch ms), optionally only those having series matching the
// extra matchers (e.g. 'service="checkout"'). A 404 means the port serves
// no Prometheus API: the ApiError is thrown for the caller to say so.
export async function discover({ signal, start, matchers = '' } = {}) {
  const sel = `{__name__=~"service_grade:.+_requests:rate.+"${matchers ? ',' + matchers : ''}}`;
  const params = { 'match[]': sel };
  if (start) params.start = (start / 1000).toFixed(3);
  const r = await getJSON('/api/v1/label/__name__/values', params, { signal });
  const seen = new Map();
  for (const name of r.data || []) {
    const m = REQUESTS.exec(name);
    if (m && !seen.has(m[1])) seen.set(m[1], { signal: m[1], window: m[2] });
  }
  return sortSignals([...seen.values()]);
}

// name builds a recorded series' name: name('service_grade', s,
// 'errors:ratio_rate') → service_grade:vigil_http_errors:ratio_rate5m.
export function name(level, s, metric) { return `${level}:${s.signal}_${metric}${s.window}`; }

// processName builds a recorded process series' name (no signal):
// processName('service_grade', 'process_cpu_utilisation:ratio_rate', s).
export function processName(level, metric, s) {
  return /:(sum)$/.test(metric) ? `${level}:${metric}` : `${level}:${metric}${s.window}`;
}

// anyOf selects the series of every signal for one metric:
// {__name__=~"service_grade:(vigil_http_requests:rate5m|spans_requests:rate5m)"}.
export function anyOf(level, signals, metric, matchers = '') {
  const names = signals.map(s => regexEsc(name(level, s, metric)));
  return `{__name__=~"${names.join('|')}"${matchers ? ',' + matchers : ''}}`;
}

// signalOf returns the signal a recorded series' name belongs to.
// The longest signal whose prefix matches wins: vigil_http_client's
// series also start with "…:vigil_http_".
export function signalOf(metricName, signals) {
  const level = String(metricName || '').split(':')[0];
  let best = null;
  for (const s of signals) {
    if (metricName.startsWith(`${level}:${s.signal}_`) && (!best || s.signal.length > best.signal.length)) best = s;
  }
  return best;
}

// instant runs an instant query (POSTed as a form, as Grafana does).
export async function instant(query, { signal, time } = {}) {
  const r = await postForm('/api/v1/query', { query, time: time ? (time / 1000).toFixed(3) : undefined }, { signal });
  return r.data;
}

// rangeQuery runs a range query over [start, end] (epoch ms), step in s.
export async function rangeQuery(query, start, end, step, { signal } = {}) {
  const r = await postForm('/api/v1/query_range', {
    query, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3), step,
  }, { signal });
  return r.data;
}
