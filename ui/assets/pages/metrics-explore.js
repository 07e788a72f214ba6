// The PromQL explorer: a query box with metric and label-name
// completion, a range and a step, a chart of the range query or a table
// of the instant query, and the API's own message for a bad query.
import { h, clear, fmtNumber, fmtTime } from '../lib/dom.js';
import { errorBox, isAbort } from '../lib/api.js';
import { lineChart, promSeries } from '../lib/chart.js';
import { range, rangePicker, stepFor } from '../lib/time.js';
import { instant, rangeQuery } from '../lib/golden.js';
import { attachCompletion } from './metrics-complete.js';

const MAX_SERIES = 100; // drawn in a chart
const MAX_ROWS = 1000; // of a table

export function renderExplore(view, ctx) {
  const p = ctx.params;
  const state = {
    query: p.get('query') || '',
    from: p.get('from') || 'now-1h',
    to: p.get('to') || 'now',
    step: p.get('step') || '',
    view: p.get('view') === 'table' ? 'table' : 'chart',
  };
  const box = h('textarea', {
    rows: 3, spellcheck: false, 'aria-label': 'PromQL query', class: 'metrics-query',
    placeholder: 'PromQL, e.g. sum by (service) (rate(vigil_http_requests_total[5m])) — Enter runs, Shift+Enter for a new line',
  });
  box.value = state.query;
  const stepIn = h('input', { type: 'text', size: 6, value: state.step, placeholder: 'auto', 'aria-label': 'Step', title: 'Resolution of the range query: 15s, 1m, or seconds; empty picks about 250 points' });
  const viewSel = h('select', { 'aria-label': 'View', onchange: () => { state.view = viewSel.value; run(true); } },
    h('option', { value: 'chart', selected: state.view === 'chart' }, 'Chart (range)'),
    h('option', { value: 'table', selected: state.view === 'table' }, 'Table (instant)'));
  const out = h('div', { class: 'metrics-result', 'aria-live': 'polite' });
  const picker = h('span');
  const drawPicker = () => clear(picker, rangePicker(new URLSearchParams({ from: state.from, to: state.to }), ({ from, to }) => {
    state.from = from; state.to = to; drawPicker(); run(true);
  }));
  drawPicker();
  const runBtn = h('button', { type: 'button', onclick: () => run(true) }, 'Run');
  stepIn.addEventListener('keydown', ev => { if (ev.key === 'Enter') { ev.preventDefault(); run(true); } });

  const completion = attachCompletion(box, { signal: ctx.signal, onRun: () => run(true) });
  view.append(h('div', { class: 'metrics-editor' }, completion.wrap),
    h('div', { class: 'toolbar' }, runBtn, picker, h('label', null, 'Step', stepIn), viewSel,
      h('span', { class: 'muted small' }, 'Enter or Ctrl+Enter runs; Tab completes')),
    out);

  let inflight = null;
  async function run(push) {
    state.query = box.value.trim();
    state.step = stepIn.value.trim();
    ctx.setParams({ query: state.query, from: state.from, to: state.to, step: state.step, view: state.view === 'table' ? 'table' : '' }, push);
    if (!state.query) { clear(out, h('p', { class: 'empty' }, 'Type a PromQL query and press Enter.')); return; }
    if (inflight) inflight.abort();
    const ac = new AbortController();
    inflight = ac;
    ctx.signal.addEventListener('abort', () => ac.abort(), { once: true });
    const r = range(new URLSearchParams({ from: state.from, to: state.to }));
    clear(out, h('p', { class: 'muted' }, 'Running…'));
    const t0 = performance.now();
    try {
      if (state.view === 'table') {
        const data = await instant(state.query, { signal: ac.signal, time: r.end });
        clear(out, stats(data, t0), table(data, r.end));
      } else {
        const step = state.step || String(stepFor(r.start, r.end, 250));
        const data = await rangeQuery(state.query, r.start, r.end, step, { signal: ac.signal });
        clear(out, stats(data, t0), chart(data, r));
      }
      out.dataset.ran = state.query;
      if (!performance.getEntriesByName('vigil-metrics-ready').length) performance.mark('vigil-metrics-ready');
    } catch (err) {
      if (!isAbort(err)) clear(out, errorBox(err));
    }
  }
  if (state.query) run(false);
  else clear(out, h('p', { class: 'empty' }, 'Type a PromQL query and press Enter.'));
  return () => { if (inflight) inflight.abort(); completion.close(); };
}

function stats(data, t0) {
  const what = Array.isArray(data.result) ? `${data.result.length} series` : 'one value';
  return h('p', { class: 'muted small' }, `${data.resultType}: ${what} in ${Math.round(performance.now() - t0)} ms`);
}

function chart(data, r) {
  if (data.resultType !== 'matrix') return table(data, r.end);
  if (!data.result.length) return h('p', { class: 'empty' }, 'No data in this range.');
  const series = promSeries(data.result.slice(0, MAX_SERIES));
  return h('div', { class: 'panel' },
    data.result.length > MAX_SERIES ? h('p', { class: 'muted small' }, `Showing ${MAX_SERIES} of ${data.result.length} series: aggregate the query to see them all.`) : null,
    lineChart({ series, start: r.start, end: r.end, height: 280 }));
}

// seriesName formats labels as PromQL writes them: name{k="v", …}.
function seriesName(metric) {
  const { __name__: name = '', ...labels } = metric || {};
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ');
  return l ? `${name}{${l}}` : (name || '{}');
}

function table(data, at) {
  const t = data.resultType;
  if (t === 'scalar' || t === 'string') {
    return h('table', { class: 'metrics-table' }, h('tbody', null, h('tr', null, h('td', null, t), h('td', { class: 'num mono' }, String(data.result[1])))));
  }
  if (!data.result.length) return h('p', { class: 'empty' }, `No data at ${fmtTime(at, false)}.`);
  const rows = data.result.slice(0, MAX_ROWS).map(r => h('tr', null,
    h('td', { class: 'mono' }, seriesName(r.metric)),
    t === 'matrix'
      ? h('td', { class: 'num mono' }, r.values.slice(-10).map(([ts, v]) => h('div', null, `${fmtNumber(parseFloat(v))} @ ${fmtTime(ts * 1000, false)}`)))
      : h('td', { class: 'num mono' }, r.value ? r.value[1] : (r.histogram ? `histogram count ${r.histogram[1].count}` : '–'))));
  return h('div', null,
    data.result.length > MAX_ROWS ? h('p', { class: 'muted small' }, `Showing ${MAX_ROWS} of ${data.result.length} series.`) : null,
    h('table', { class: 'metrics-table' }, h('thead', null, h('tr', null, h('th', null, 'Series'), h('th', { class: 'num' }, 'Value'))), h('tbody', null, rows)));
}
