// Completion in the PromQL box: metric names (/api/v1/label/__name__/values)
// and PromQL's functions where a metric is expected, label names (/api/v1/labels) inside braces
// and after by/without. Enter runs the query unless a suggestion is
// highlighted; Tab takes the highlighted (or first) suggestion; arrows move;
// Escape closes.
import { h, clear } from '../lib/dom.js';
import { getJSON } from '../lib/api.js';

const MAX_SUGGESTIONS = 20;
// PromQL's aggregations and common functions, offered after the metric names.
const FUNCTIONS = ['sum', 'avg', 'min', 'max', 'count', 'topk', 'bottomk', 'quantile', 'count_values', 'stddev', 'group',
  'rate', 'irate', 'increase', 'delta', 'deriv', 'histogram_quantile', 'histogram_count', 'histogram_sum',
  'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time', 'count_over_time', 'quantile_over_time', 'last_over_time',
  'absent', 'absent_over_time', 'changes', 'resets', 'clamp_min', 'clamp_max', 'label_replace', 'label_join', 'vector', 'scalar',
  'time', 'timestamp', 'abs', 'ceil', 'floor', 'round', 'sort', 'sort_desc', 'predict_linear'];
const WORD = /[a-zA-Z_:][a-zA-Z0-9_:]*$/;

// Both lists are read once per page load and kept: the names change slowly.
let cache = null;
function load(signal) {
  if (!cache) {
    const start = ((Date.now() - 6 * 3600e3) / 1000).toFixed(0);
    const get = p => getJSON(p, { start }, { signal }).then(r => r.data || [], () => { cache = null; return []; });
    cache = Promise.all([get('/api/v1/label/__name__/values'), get('/api/v1/labels')])
      .then(([metrics, labels]) => ({ metrics: [...metrics, ...FUNCTIONS], labels: labels.filter(l => l !== '__name__') }));
  }
  return cache;
}

// context tells what the word before the cursor is: a label name inside
// {…} or by/without (…), otherwise a metric name.
function context(before) {
  const m = WORD.exec(before);
  const word = m ? m[0] : '';
  const head = before.slice(0, before.length - word.length);
  let depth = 0, quoted = false;
  for (let i = 0; i < head.length; i++) {
    const c = head[i];
    if (c === '"' && head[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && c === '{') depth++;
    else if (!quoted && c === '}') depth = Math.max(0, depth - 1);
  }
  if (quoted) return null;
  if (depth > 0) return /[{,]\s*$/.test(head) ? { kind: 'labels', word } : null;
  if (/\b(by|without|on|ignoring|group_left|group_right)\s*\(([a-zA-Z0-9_,\s]*)$/.test(head)) return { kind: 'labels', word };
  return word ? { kind: 'metrics', word } : null;
}

export function attachCompletion(box, { signal, onRun }) {
  const list = h('ul', { class: 'metrics-suggest', role: 'listbox', hidden: true, 'aria-label': 'Suggestions' });
  const wrap = h('div', { class: 'metrics-box' }, box, list);
  box.setAttribute('aria-autocomplete', 'list');
  let items = [], active = -1, word = '';

  function close() { list.hidden = true; items = []; active = -1; }
  function highlight(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (list.children[i]) list.children[i].scrollIntoView({ block: 'nearest' });
  }
  function accept(i) {
    const v = items[i];
    if (v === undefined) return;
    const pos = box.selectionStart;
    box.value = box.value.slice(0, pos - word.length) + v + box.value.slice(pos);
    const np = pos - word.length + v.length;
    box.setSelectionRange(np, np);
    close();
    box.focus();
  }
  async function suggest() {
    const ctx = context(box.value.slice(0, box.selectionStart));
    if (!ctx) { close(); return; }
    const names = await load(signal);
    if (signal.aborted) return;
    const pool = ctx.kind === 'labels' ? names.labels : names.metrics;
    const w = ctx.word.toLowerCase();
    const starts = [], contains = [];
    for (const n of pool) {
      const l = n.toLowerCase();
      if (l === w) continue;
      if (l.startsWith(w)) starts.push(n);
      else if (w && l.includes(w) && contains.length < MAX_SUGGESTIONS) contains.push(n);
      if (starts.length >= MAX_SUGGESTIONS) break;
    }
    items = [...starts, ...contains].slice(0, MAX_SUGGESTIONS);
    word = ctx.word;
    if (!items.length || (!w && ctx.kind === 'metrics')) { close(); return; }
    clear(list, items.map((n, i) => h('li', {
      role: 'option', 'aria-selected': 'false', dataset: { kind: ctx.kind },
      onmousedown: ev => { ev.preventDefault(); accept(i); },
    }, n)));
    list.hidden = false;
    active = -1;
  }

  box.addEventListener('focus', () => { load(signal); });
  box.addEventListener('input', () => { suggest(); });
  box.addEventListener('blur', () => setTimeout(close, 150));
  box.addEventListener('keydown', ev => {
    const open = !list.hidden && items.length;
    if (open && ev.key === 'ArrowDown') { ev.preventDefault(); highlight((active + 1) % items.length); return; }
    if (open && ev.key === 'ArrowUp') { ev.preventDefault(); highlight((active - 1 + items.length) % items.length); return; }
    if (open && ev.key === 'Escape') { ev.preventDefault(); close(); return; }
    if (open && ev.key === 'Tab' && !ev.shiftKey) { ev.preventDefault(); accept(active >= 0 ? active : 0); return; }
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      if (open && active >= 0 && !ev.ctrlKey && !ev.metaKey) { accept(active); return; }
      close();
      onRun();
    }
  });
  return { wrap, close };
}
