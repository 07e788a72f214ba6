// The Profiles page's result: the flame graph with its search box and
// zoom, and the top table (self and total per function, sortable), for
// one merged selection or for a diff of two ranges.
import { h, clear, fmtPercent, debounce } from '../lib/dom.js';
import { flameGraph, topFunctions, formatter, change } from '../lib/flamegraph.js';

const TOP_ROWS = 50, MAX_ROWS = 2000;

export function profileView(tree, { unit, search = '', onSearch }) {
  if (!tree.root.total) {
    return h('p', { class: 'empty' }, 'No samples in this selection and range.');
  }
  const fmt = formatter(unit);
  const crumbs = h('div', { class: 'fg-crumbs small' });
  const fg = flameGraph(tree, { unit, onFocus: n => showCrumbs(n) });
  const searchIn = h('input', { type: 'search', value: search, placeholder: 'Highlight functions…', 'aria-label': 'Search functions' });
  const reset = h('button', { type: 'button', class: 'ghost', onclick: () => { fg.setFocus(null); showCrumbs(tree.root); } }, 'Reset zoom');
  const table = h('div', { class: 'fg-top' });
  const rows = topFunctions(tree);

  function showCrumbs(n) {
    const path = [];
    for (let a = n; a; a = a.parent) path.unshift(a);
    clear(crumbs, path.map((a, i) => [i ? ' › ' : '', i === path.length - 1 ? h('strong', null, a.name)
      : h('a', { href: '', onclick: ev => { ev.preventDefault(); fg.setFocus(a); showCrumbs(a); } }, a.name)]));
  }
  showCrumbs(tree.root);

  const tot = tree.root.total;
  const cols = tree.diff
    ? [['name', 'Function', r => r.name],
      ['aself', 'Self A', r => r.a.self, fmt], ['bself', 'Self B', r => r.b.self, fmt],
      ['ashare', 'Total A', r => tree.leftTicks ? r.a.total / tree.leftTicks : 0, fmtPercent],
      ['bshare', 'Total B', r => tree.rightTicks ? r.b.total / tree.rightTicks : 0, fmtPercent],
      ['change', 'Change', r => change(r.a.total, r.b.total, tree.leftTicks, tree.rightTicks),
        v => Number.isFinite(v) ? (v > 0 ? '+' : '') + fmtPercent(v) : 'new']]
    : [['name', 'Function', r => r.name],
      ['self', 'Self', r => r.self, fmt], ['selfp', 'Self %', r => r.self / tot, fmtPercent],
      ['total', 'Total', r => r.total, fmt], ['totalp', 'Total %', r => r.total / tot, fmtPercent]];
  let sortBy = tree.diff ? 'change' : 'self', desc = true, limit = TOP_ROWS;

  function drawTable() {
    const col = cols.find(c => c[0] === sortBy);
    const q = searchIn.value.toLowerCase();
    const sorted = rows.filter(r => !q || r.name.toLowerCase().includes(q)).sort((x, y) => {
      const a = col[2](x), b = col[2](y);
      const c = typeof a === 'string' ? a.localeCompare(b) : (a === b ? 0 : a < b ? -1 : 1);
      return desc ? -c : c;
    });
    const head = h('tr', null, cols.map(([key, label]) => h('th', { class: key === 'name' ? '' : 'num', 'aria-sort': key === sortBy ? (desc ? 'descending' : 'ascending') : 'none' },
      h('button', { type: 'button', class: 'fg-sort', dataset: { key }, onclick: () => { if (sortBy === key) desc = !desc; else { sortBy = key; desc = key !== 'name'; } drawTable(); } },
        label, key === sortBy ? (desc ? ' ▾' : ' ▴') : ''))));
    const body = sorted.slice(0, limit).map(r => h('tr', null, cols.map(([key, , get, f]) => key === 'name'
      ? h('td', { class: 'mono fg-fn' }, h('a', { href: '', title: 'Zoom the flame graph to this function', onclick: ev => {
        ev.preventDefault();
        const n = fg.find(r.name);
        if (n) { fg.setFocus(n); showCrumbs(n); fgBox.scrollIntoView({ block: 'nearest' }); }
      } }, r.name))
      : h('td', { class: 'num' + (key === 'change' ? changeClass(get(r)) : '') }, f(get(r))))));
    clear(table, h('table', { class: 'fg-table' }, h('thead', null, head), h('tbody', null, body)),
      sorted.length > limit ? h('p', { class: 'muted small' }, `${sorted.length - limit} more functions. `,
        limit < MAX_ROWS ? h('button', { type: 'button', class: 'ghost', onclick: () => { limit = MAX_ROWS; drawTable(); } }, `Show ${Math.min(sorted.length, MAX_ROWS)}`) : 'Search to narrow.') : null);
  }

  const applySearch = debounce(() => { fg.setSearch(searchIn.value); drawTable(); if (onSearch) onSearch(searchIn.value); }, 150);
  searchIn.addEventListener('input', applySearch);
  if (search) fg.setSearch(search);
  drawTable();

  const fgBox = h('section', { class: 'panel' },
    h('div', { class: 'toolbar' }, searchIn, reset, h('span', { class: 'muted small' },
      tree.diff ? `A: ${fmt(tree.leftTicks)}, B: ${fmt(tree.rightTicks)}` : `total ${fmt(tot)}`)),
    crumbs, fg.el);
  return h('div', null, fgBox, h('h2', null, 'Top functions'), table);
}

function changeClass(v) {
  if (!(Math.abs(v) >= 0.02)) return '';
  return v > 0 ? ' fg-grew' : ' fg-shrank';
}
