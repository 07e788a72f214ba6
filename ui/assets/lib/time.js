// Time ranges as the URL holds them: from/to are Grafana-style relative
// times ("now-1h", "now") or epoch milliseconds, so a shared link either
// follows the clock or pins the same window.
import { h, fmtTime } from './dom.js';

export const PRESETS = [
  ['now-5m', 'Last 5 minutes'], ['now-15m', 'Last 15 minutes'], ['now-1h', 'Last hour'],
  ['now-6h', 'Last 6 hours'], ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'],
];

const UNIT = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

// parseTime turns "now", "now-15m", epoch ms or an ISO date into epoch ms;
// NaN when it cannot.
export function parseTime(v, now = Date.now()) {
  if (v === undefined || v === null || v === '') return NaN;
  v = String(v).trim();
  if (v === 'now') return now;
  const m = /^now-(\d+(?:\.\d+)?)([smhdw])$/.exec(v);
  if (m) return now - parseFloat(m[1]) * UNIT[m[2]];
  if (/^\d+$/.test(v)) return parseInt(v, 10);
  const t = Date.parse(v);
  return Number.isNaN(t) ? NaN : t;
}

// parseDuration: "1h30m" → ms; NaN when invalid.
export function parseDuration(v) {
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|s|m|h|d|w)/g;
  let total = 0, m, seen = '';
  while ((m = re.exec(v)) !== null) {
    seen += m[0];
    const n = parseFloat(m[1]);
    total += m[2] === 'ms' ? n : (m[2] === 'us' || m[2] === 'µs') ? n / 1000 : n * UNIT[m[2]];
  }
  return seen === v && v !== '' ? total : NaN;
}

// range reads from/to of params (URLSearchParams) with a default window.
export function range(params, def = 'now-1h') {
  const now = Date.now();
  const from = params.get('from') || def;
  const to = params.get('to') || 'now';
  let start = parseTime(from, now), end = parseTime(to, now);
  if (Number.isNaN(start)) start = parseTime(def, now);
  if (Number.isNaN(end)) end = now;
  if (start >= end) start = end - 60e3;
  return { from, to, start, end };
}

// stepFor picks a query step (seconds) giving about points points.
export function stepFor(start, end, points = 120) {
  const raw = (end - start) / 1000 / points;
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
  return nice.find(s => s >= raw) || 86400;
}

// rangePicker renders a preset selector with from/to inputs; onChange gets
// {from, to} as strings for the URL.
export function rangePicker(params, onChange, def = 'now-1h') {
  const r = range(params, def);
  const preset = PRESETS.find(([v]) => v === r.from && r.to === 'now');
  const fromIn = h('input', { type: 'text', value: r.from, size: 14, 'aria-label': 'From', title: 'now-1h, epoch ms or 2026-12-03T10:00:00Z' });
  const toIn = h('input', { type: 'text', value: r.to, size: 14, 'aria-label': 'To' });
  const custom = h('span', { class: 'row', hidden: !!preset }, fromIn, '→', toIn,
    h('button', { type: 'button', class: 'ghost', onclick: () => apply(fromIn.value, toIn.value) }, 'Apply'));
  const sel = h('select', { 'aria-label': 'Time range', onchange: () => {
    if (sel.value === 'custom') { custom.hidden = false; fromIn.value = String(Math.round(r.start)); toIn.value = String(Math.round(r.end)); fromIn.focus(); return; }
    apply(sel.value, 'now');
  } },
  PRESETS.map(([v, label]) => h('option', { value: v, selected: preset && preset[0] === v }, label)),
  h('option', { value: 'custom', selected: !preset }, 'Custom…'));
  function apply(from, to) {
    if (Number.isNaN(parseTime(from)) || Number.isNaN(parseTime(to))) {
      fromIn.setCustomValidity('want now-1h, epoch milliseconds or an ISO date');
      fromIn.reportValidity();
      return;
    }
    onChange({ from, to });
  }
  return h('span', { class: 'row', title: `${fmtTime(r.start, false)} → ${fmtTime(r.end, false)}` }, sel, custom);
}
