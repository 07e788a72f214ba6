// Logs: a LogQL box with completion, a range, the volume of the selected
// lines by level (click a bar to narrow the range), the lines themselves
// (expandable into their fields, linked to their trace), metric queries
// drawn as a chart, and a live tail. The URL holds query, from, to, limit
// and direction, so a view is a link (the Traces page links here with
// logsLink(query, {from, to})).
import { h, clear, fmtNumber } from '../lib/dom.js';
import { errorBox, isAbort } from '../lib/api.js';
import { range, rangePicker, stepFor } from '../lib/time.js';
import { barChart, lineChart, promSeries } from '../lib/chart.js';
import { attach } from './logs-complete.js';
import { lokiGet, isLogQuery, entries, row, levelColor } from './logs-lines.js';
import { startTail } from './logs-tail.js';

const LIMITS = [50, 100, 500, 1000, 5000];
const ns = ms => `${Math.round(ms)}000000`;

export function render(view, ctx) {
  const p = ctx.params;
  const askedLimit = Math.floor(Number(p.get('limit')));
  const state = {
    query: p.get('query') || '',
    from: p.get('from') || 'now-1h',
    to: p.get('to') || 'now',
    limit: askedLimit > 0 ? Math.min(askedLimit, LIMITS[LIMITS.length - 1]) : 100,
    direction: p.get('direction') === 'forward' ? 'forward' : 'backward',
  };
  const curRange = () => range(new URLSearchParams({ from: state.from, to: state.to }));

  const box = h('textarea', {
    id: 'logs-query', rows: 2, spellcheck: 'false', 'aria-label': 'LogQL query',
    placeholder: '{service="checkout"} |= "error"    ·    rate({service="checkout"}[1m])',
  });
  box.value = state.query;
  const completion = attach(box, { range: curRange, signal: ctx.signal });
  box.addEventListener('keydown', ev => {
    if (ev.key === 'Enter' && !ev.shiftKey && !completion.isOpen()) { ev.preventDefault(); completion.close(); run(true); }
  });

  const pickerSlot = h('span');
  const placePicker = () => clear(pickerSlot, rangePicker(new URLSearchParams({ from: state.from, to: state.to }), r => {
    state.from = r.from; state.to = r.to; placePicker(); run(true);
  }));
  placePicker();
  const limitSel = h('select', { id: 'logs-limit', 'aria-label': 'Line limit', onchange: () => { state.limit = Number(limitSel.value); run(true); } },
    [...new Set([...LIMITS, state.limit])].sort((a, b) => a - b).map(n => h('option', { value: n, selected: n === state.limit }, `${n} lines`)));
  const dirSel = h('select', { id: 'logs-direction', 'aria-label': 'Order', onchange: () => { state.direction = dirSel.value; run(true); } },
    h('option', { value: 'backward', selected: state.direction === 'backward' }, 'Newest first'),
    h('option', { value: 'forward', selected: state.direction === 'forward' }, 'Oldest first'));
  const liveBtn = h('button', { type: 'button', id: 'logs-live', class: 'ghost', 'aria-pressed': 'false', onclick: () => toggleLive() }, 'Live');

  const volume = h('div', { id: 'logs-volume', class: 'logs-volume' });
  const chart = h('div', { id: 'logs-chart' });
  const status = h('div', { id: 'logs-status', class: 'small muted' });
  const results = h('div', { id: 'logs-results', class: 'logs-results' });

  view.append(
    h('h1', null, 'Logs'),
    h('form', { class: 'logs-form', onsubmit: ev => { ev.preventDefault(); run(true); } },
      h('div', { class: 'logs-qwrap' }, box, completion.list),
      h('div', { class: 'toolbar' }, pickerSlot, limitSel, dirSel,
        h('button', { type: 'submit', id: 'logs-run' }, 'Run query'), liveBtn,
        h('span', { class: 'small muted' }, 'Enter runs, Shift+Enter adds a line, Tab completes'))),
    volume, chart, status, results);

  let runCtl = null, tail = null, ready = false;

  function onFilter(name, value) {
    const esc = String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    box.value = `${box.value.trim()} | ${name}="${esc}"`;
    run(true);
  }

  async function run(push) {
    stopLive();
    state.query = box.value.trim();
    ctx.setParams({ query: state.query, from: state.from, to: state.to, limit: state.limit, direction: state.direction }, push);
    if (runCtl) runCtl.abort();
    runCtl = new AbortController();
    const signal = AbortSignal.any([ctx.signal, runCtl.signal]);
    clear(volume); clear(chart); clear(status); clear(results);
    if (!state.query) {
      clear(results, h('p', { class: 'empty' }, 'Write a LogQL query — type { for the labels — and press Enter. ',
        'A metric query such as ', h('code', null, 'sum by (detected_level) (rate({service="api"}[1m]))'), ' draws a chart.'));
      markReady();
      return;
    }
    const r = curRange();
    clear(results, h('p', { class: 'muted' }, 'Loading…'));
    try {
      if (isLogQuery(state.query)) {
        const vol = volumeOf(state.query, r, signal);
        const res = await lokiGet('/loki/api/v1/query_range', {
          query: state.query, start: ns(r.start), end: ns(r.end), limit: state.limit, direction: state.direction,
        }, signal);
        if (res.data.resultType !== 'streams') { drawMatrix(res.data, r); return; }
        const es = entries(res.data.result, state.direction);
        clear(status, `${fmtNumber(es.length)} line${es.length === 1 ? '' : 's'}`,
          es.length >= state.limit ? ` — the limit; narrow the range or the query, or raise the limit to see more` : '');
        if (!es.length) clear(results, h('p', { class: 'empty' }, 'No line matches this query in this range.'));
        else renderRows(es);
        markReady();
        const v = await vol;
        if (!signal.aborted) clear(volume, v);
      } else {
        const step = stepFor(r.start, r.end, 200);
        const res = await lokiGet('/loki/api/v1/query_range', { query: state.query, start: ns(r.start), end: ns(r.end), step: `${step}s` }, signal);
        drawMatrix(res.data, r);
      }
    } catch (err) {
      if (isAbort(err)) return;
      clear(volume);
      clear(results, errorBox(err));
    }
    markReady();
  }

  function renderRows(es) {
    clear(results, es.map(e => row(e, { onFilter })));
    performance.mark('logs-rendered');
  }

  function drawMatrix(data, r) {
    clear(results);
    if (data.resultType !== 'matrix') { clear(results, h('pre', null, JSON.stringify(data.result, null, 2))); return; }
    const series = promSeries(data.result);
    clear(status, `${series.length} series`);
    if (!series.length) { clear(chart, h('p', { class: 'empty' }, 'The query has no samples in this range.')); return; }
    clear(chart, h('div', { class: 'panel logs-metric' }, lineChart({ series, start: r.start, end: r.end, height: 260 })));
  }

  // volumeOf counts the query's lines by level per step: a metric query
  // over the log query itself, so line filters and stages count too. It
  // resolves to the histogram (or a note), placed once the lines are.
  async function volumeOf(q, r, signal) {
    const step = stepFor(r.start, r.end, 60);
    try {
      const res = await lokiGet('/loki/api/v1/query_range', {
        query: `sum by (detected_level) (count_over_time(${q} [${step}s]))`, start: ns(r.start), end: ns(r.end), step: `${step}s`,
      }, signal);
      // A sample at t counts (t-step, t]: draw its bar over that interval.
      const series = promSeries(res.data.result, ['detected_level'])
        .map((se, i) => ({ ...se, name: se.labels.detected_level || 'unknown', color: levelColor(se.labels.detected_level || '', i), points: se.points.map(([t, v]) => [t - step * 1000, v]) }))
        .sort((a, b) => a.name.localeCompare(b.name));
      if (!series.length) return null;
      const narrow = (t0, t1) => { state.from = String(Math.floor(t0)); state.to = String(Math.ceil(t1)); placePicker(); run(true); };
      const chartEl = barChart({ series, start: r.start, end: r.end, step: step * 1000, height: 110, onSelect: narrow });
      // Bars are reachable by keyboard too: Tab to one, Enter narrows.
      for (const rect of chartEl.querySelectorAll('rect')) {
        rect.setAttribute('tabindex', '0');
        rect.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); rect.dispatchEvent(new MouseEvent('click')); } });
      }
      return h('div', { class: 'panel' },
        h('div', { class: 'small muted' }, `Lines by level per ${step} s — click a bar to narrow the range to it`), chartEl);
    } catch (err) {
      return isAbort(err) ? null : h('p', { class: 'small muted' }, `No volume: ${err.message}`);
    }
  }

  function markReady() {
    if (ready) return;
    ready = true;
    performance.mark('logs-ready');
    view.dataset.ready = '1';
  }

  function stopLive() {
    if (!tail) return;
    tail.stop();
    tail = null;
    liveBtn.textContent = 'Live';
    liveBtn.setAttribute('aria-pressed', 'false');
  }

  function toggleLive() {
    if (tail) { stopLive(); return; }
    const q = box.value.trim();
    if (!isLogQuery(q)) {
      clear(results, errorBox(new Error('Live tail follows a log query: a stream selector such as {service="api"}, with its filters.')));
      return;
    }
    if (runCtl) runCtl.abort();
    clear(chart); clear(status, 'Live: newest first');
    liveBtn.textContent = 'Stop';
    liveBtn.setAttribute('aria-pressed', 'true');
    tail = startTail(results, { query: q, limit: Math.min(state.limit, 100), signal: ctx.signal, onFilter, onEnd: () => stopLive() });
  }

  run(false);
  return () => { stopLive(); if (runCtl) runCtl.abort(); };
}
