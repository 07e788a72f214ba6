// SVG charts with no library: time-series lines, stacked bars, a scatter
// plot and sparklines. Each returns an element; the SVG uses a fixed
// viewBox width and scales with its container.
import { h, s, fmtNumber, fmtTime } from './dom.js';

const W = 1000;
const PAD = { l: 56, r: 12, t: 10, b: 22 };

export function color(i) { return `var(--c${(i % 8) + 1})`; }

function niceStep(span, ticks) {
  const raw = span / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

function yTicks(min, max, n = 4) {
  if (!(max - min > Math.abs(max) * 1e-9)) { max = min + (Math.abs(min) || 1); }
  const step = niceStep(max - min, n);
  const out = [];
  // Counted, not accumulated: a step below the values' precision would
  // never move v, and a float sum drifts.
  const first = Math.ceil(min / step);
  for (let i = 0; i <= n * 3; i++) {
    const v = (first + i) * step;
    if (v > max + step * 1e-9) break;
    out.push(v);
  }
  return out;
}

const TIME_STEPS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400].map(x => x * 1000);

function timeTicks(start, end, n = 6) {
  const step = TIME_STEPS.find(st => (end - start) / st <= n) || TIME_STEPS[TIME_STEPS.length - 1];
  const tz = new Date().getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((start - tz) / step) * step + tz; t <= end; t += step) out.push(t);
  return { ticks: out, step };
}

function timeLabel(t, step) {
  const s = fmtTime(t, false);
  if (step >= 86400e3) return s.slice(5, 10);
  if (step >= 3600e3 * 6) return s.slice(5, 16);
  if (step < 60e3) return s.slice(11, 19);
  return s.slice(11, 16);
}

let tip;
function tooltip(ev, html) {
  if (!tip) { tip = h('div', { class: 'tooltip', role: 'tooltip' }); document.body.append(tip); }
  if (html === null) { tip.hidden = true; return; }
  tip.hidden = false;
  tip.replaceChildren(...html);
  const x = Math.min(ev.clientX + 12, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = x + 'px';
  tip.style.top = (ev.clientY + 12) + 'px';
}

function frame(height, start, end, ymin, ymax, yFormat) {
  const x = t => PAD.l + (t - start) / (end - start || 1) * (W - PAD.l - PAD.r);
  const y = v => PAD.t + (1 - (v - ymin) / (ymax - ymin || 1)) * (height - PAD.t - PAD.b);
  const grid = s('g', { class: 'grid' });
  for (const v of yTicks(ymin, ymax)) {
    grid.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      s('text', { x: PAD.l - 6, y: y(v) + 3, 'text-anchor': 'end' }, yFormat(v)));
  }
  const { ticks, step } = timeTicks(start, end);
  for (const t of ticks) grid.append(s('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, timeLabel(t, step)));
  return { x, y, grid };
}

function svgPoint(svg, ev) {
  const p = svg.createSVGPoint();
  p.x = ev.clientX; p.y = ev.clientY;
  return p.matrixTransform(svg.getScreenCTM().inverse());
}

function legend(series) {
  return h('div', { class: 'legend' }, series.map((se, i) =>
    h('span', null, h('i', { style: { background: se.color || color(i) } }), se.name || '{}')));
}

function extent(series, stacked) {
  let min = Infinity, max = -Infinity, tmin = Infinity, tmax = -Infinity;
  const sums = new Map();
  for (const se of series) for (const [t, v] of se.points) {
    if (!Number.isFinite(v)) continue;
    tmin = Math.min(tmin, t); tmax = Math.max(tmax, t);
    if (stacked) sums.set(t, (sums.get(t) || 0) + v);
    else { min = Math.min(min, v); max = Math.max(max, v); }
  }
  if (stacked) { min = 0; max = Math.max(0, ...sums.values()); }
  if (min === Infinity) { min = 0; max = 1; }
  if (min > 0 && min < max / 2) min = 0;
  // A flat line, or one whose only variation is float noise (a ratio
  // settled at 0.1 ± 1e-17), gets a visible span around its value.
  if (!(max - min > Math.abs(max) * 1e-9)) { max = min + (Math.abs(min) || 1); }
  return { min, max, tmin, tmax };
}

// lineChart draws series [{name, points: [[epochMs, value]…], color?}]
// over [start, end]; yFormat formats the axis and tooltip values.
export function lineChart({ series, start, end, height = 200, yFormat = fmtNumber, showLegend = true }) {
  const e = extent(series, false);
  start = start ?? e.tmin; end = end ?? e.tmax;
  const { x, y, grid } = frame(height, start, end, e.min, e.max, yFormat);
  const paths = series.map((se, i) => {
    let d = '', gap = true;
    for (const [t, v] of se.points) {
      if (!Number.isFinite(v)) { gap = true; continue; }
      d += `${gap ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      gap = false;
    }
    const finite = se.points.filter(p => Number.isFinite(p[1]));
    if (finite.length === 1) {
      // One sample draws no line: a dot shows it.
      return s('circle', { cx: x(finite[0][0]), cy: y(finite[0][1]), r: 3, fill: se.color || color(i) });
    }
    return s('path', { d, fill: 'none', stroke: se.color || color(i), 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' });
  });
  const cursor = s('line', { y1: PAD.t, y2: height - PAD.b, visibility: 'hidden' });
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': 'time series chart' },
    grid, paths, s('g', { class: 'hover' }, cursor));
  const times = [...new Set(series.flatMap(se => se.points.map(p => p[0])))].sort((a, b) => a - b);
  svg.addEventListener('mousemove', ev => {
    if (!times.length) return;
    const px = svgPoint(svg, ev).x;
    const t = times.reduce((best, t) => Math.abs(x(t) - px) < Math.abs(x(best) - px) ? t : best, times[0]);
    cursor.setAttribute('x1', x(t)); cursor.setAttribute('x2', x(t)); cursor.setAttribute('visibility', 'visible');
    const rows = series.slice(0, 12).map((se, i) => {
      const p = se.points.find(p => p[0] === t);
      return p ? h('div', null, h('span', { style: { color: se.color || color(i) } }, '■ '), `${se.name || '{}'}: ${yFormat(p[1])}`) : null;
    });
    tooltip(ev, [h('div', { class: 'muted' }, fmtTime(t, false)), ...rows]);
  });
  svg.addEventListener('mouseleave', ev => { cursor.setAttribute('visibility', 'hidden'); tooltip(ev, null); });
  return h('div', null, svg, showLegend && series.length > 1 ? legend(series) : null);
}

// barChart stacks series [{name, points, color?}] per timestamp; step is
// the bar width in ms. onSelect(t0, t1), when given, is called with the
// clicked bar's interval.
export function barChart({ series, start, end, step, height = 120, yFormat = fmtNumber, onSelect }) {
  const e = extent(series, true);
  start = start ?? e.tmin; end = end ?? e.tmax + (step || 0);
  const { x, y, grid } = frame(height, start, end, 0, e.max, yFormat);
  const base = new Map();
  const bars = s('g');
  const wpx = Math.max(1, (x(start + (step || (end - start) / 100)) - x(start)) * 0.85);
  series.forEach((se, i) => {
    for (const [t, v] of se.points) {
      if (!(v > 0)) continue;
      const b = base.get(t) || 0;
      const r = s('rect', { x: x(t), y: y(b + v), width: wpx, height: Math.max(0.5, y(b) - y(b + v)), fill: se.color || color(i) });
      r.addEventListener('mousemove', ev => tooltip(ev, [h('div', { class: 'muted' }, fmtTime(t, false)), `${se.name}: ${yFormat(v)}`]));
      r.addEventListener('mouseleave', ev => tooltip(ev, null));
      if (onSelect) { r.style.cursor = 'pointer'; r.addEventListener('click', () => onSelect(t, t + (step || 0))); }
      bars.append(r);
      base.set(t, b + v);
    }
  });
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': 'bar chart' }, grid, bars);
  return h('div', null, svg, series.length > 1 ? legend(series) : null);
}

// scatter draws points [{t, v, color?, title, onclick?}] (e.g. traces by
// start time and duration).
export function scatter({ points, start, end, height = 160, yFormat = fmtNumber }) {
  const e = extent([{ points: points.map(p => [p.t, p.v]) }], false);
  start = start ?? e.tmin; end = end ?? e.tmax;
  if (start === end) { start -= 1000; end += 1000; }
  const { x, y, grid } = frame(height, start, end, 0, e.max, yFormat);
  const dots = points.map(p => {
    const c = s('circle', { cx: x(p.t), cy: y(p.v), r: p.r || 4, fill: p.color || color(0), 'fill-opacity': 0.7 });
    c.addEventListener('mousemove', ev => tooltip(ev, [p.title || `${yFormat(p.v)} at ${fmtTime(p.t)}`]));
    c.addEventListener('mouseleave', ev => tooltip(ev, null));
    if (p.onclick) { c.style.cursor = 'pointer'; c.addEventListener('click', ev => { tooltip(ev, null); p.onclick(); }); }
    return c;
  });
  return h('div', null, s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': 'scatter plot' }, grid, dots));
}

// sparkline: a small line of values (e.g. the last hour's rate), no axes.
export function sparkline(points, { width = 120, height = 28, stroke = color(0), title } = {}) {
  const vals = points.map(p => p[1]).filter(Number.isFinite);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title || 'sparkline' });
  if (vals.length < 2) return svg;
  const min = Math.min(...vals), max = Math.max(...vals);
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  let d = '', gap = true;
  for (const [t, v] of points) {
    if (!Number.isFinite(v)) { gap = true; continue; }
    const px = (t - t0) / (t1 - t0 || 1) * (width - 2) + 1;
    const py = height - 2 - (v - min) / (max - min || 1) * (height - 4);
    d += `${gap ? 'M' : 'L'}${px.toFixed(1)},${py.toFixed(1)}`;
    gap = false;
  }
  svg.append(s('path', { d, fill: 'none', stroke, 'stroke-width': 1.5 }));
  if (title) svg.append(s('title', null, title));
  return svg;
}

// promSeries converts a Prometheus matrix result into chart series, naming
// each by its labels (or by the labels in nameBy).
export function promSeries(result, nameBy) {
  return (result || []).map(r => ({
    name: nameBy ? nameBy.map(k => r.metric[k]).filter(Boolean).join(' ') || JSON.stringify(r.metric)
      : Object.entries(r.metric).map(([k, v]) => `${k}="${v}"`).join(', '),
    labels: r.metric,
    points: (r.values || (r.value ? [r.value] : [])).map(([t, v]) => [t * 1000, parseFloat(v)]),
  }));
}
