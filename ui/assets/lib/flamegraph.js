// Flame graphs with no library, from the Pyroscope querier's answers
// (SelectMergeStacktraces and Diff): `names` and `levels`, one level per
// depth, each node four numbers (x offset from the end of the previous
// node of its level, total, self, name index) or, for a diff, seven (the
// same three for the baseline, A, then for the compared profile, B, then
// the name). Frames are absolutely positioned elements sized in per cent,
// so the graph follows its container's width without measuring it.
import { h, fmtNumber, fmtDuration, fmtBytes, fmtPercent } from './dom.js';

const ROW = 18; // px per level

// parseFlamegraph turns the answer's flame graph into a tree of nodes
// {name, x, total, self, depth, parent, children} (x and total in ticks;
// for a diff also a: {total, self}, b: {total, self}, x and total being
// A's plus B's, as the frame's width is the sum of both).
export function parseFlamegraph(fg, diff = false) {
  const names = fg.names || [];
  const stride = diff ? 7 : 4;
  const levels = (fg.levels || []).map(l => (l.values || []).map(Number));
  const rows = [];
  for (let d = 0; d < levels.length; d++) {
    const v = levels[d];
    const row = [];
    let endA = 0, endB = 0;
    for (let i = 0; i + stride <= v.length; i += stride) {
      let n;
      if (diff) {
        const xa = endA + v[i], xb = endB + v[i + 3];
        n = { name: names[v[i + 6]] ?? '?', a: { total: v[i + 1], self: v[i + 2] }, b: { total: v[i + 4], self: v[i + 5] } };
        n.x = xa + xb; n.total = v[i + 1] + v[i + 4]; n.self = v[i + 2] + v[i + 5];
        endA = xa + v[i + 1]; endB = xb + v[i + 4];
      } else {
        n = { name: names[v[i + 3]] ?? '?', x: endA + v[i], total: v[i + 1], self: v[i + 2] };
        endA = n.x + n.total;
      }
      n.depth = d; n.children = []; n.parent = null;
      row.push(n);
    }
    rows.push(row);
  }
  // Children lie within their parent's span, both rows ordered by x.
  for (let d = 1; d < rows.length; d++) {
    let p = 0;
    const prev = rows[d - 1];
    for (const n of rows[d]) {
      while (p < prev.length && prev[p].x + prev[p].total <= n.x) p++;
      if (p >= prev.length) break;
      n.parent = prev[p];
      prev[p].children.push(n);
    }
  }
  const root = rows[0] && rows[0][0];
  return { root: root || { name: 'total', x: 0, total: 0, self: 0, depth: 0, children: [], parent: null }, depth: rows.length,
    leftTicks: Number(fg.leftTicks || 0), rightTicks: Number(fg.rightTicks || 0), diff };
}

// topFunctions sums self and total per function name; a function that
// calls itself counts once in its total. For a diff each row also has
// a and b, each {self, total}.
export function topFunctions(tree) {
  const by = new Map();
  const onStack = new Map();
  const get = name => {
    let r = by.get(name);
    if (!r) { r = { name, self: 0, total: 0, a: { self: 0, total: 0 }, b: { self: 0, total: 0 } }; by.set(name, r); }
    return r;
  };
  const walk = n => {
    const r = get(n.name);
    r.self += n.self;
    if (tree.diff) { r.a.self += n.a.self; r.b.self += n.b.self; }
    const depth = onStack.get(n.name) || 0;
    if (depth === 0) {
      r.total += n.total;
      if (tree.diff) { r.a.total += n.a.total; r.b.total += n.b.total; }
    }
    onStack.set(n.name, depth + 1);
    for (const c of n.children) walk(c);
    onStack.set(n.name, depth);
  };
  for (const c of tree.root.children) walk(c);
  return [...by.values()];
}

// formatter returns a function formatting values of a sample unit.
export function formatter(unit) {
  const f = unitFormatter(unit);
  return v => v === 0 ? '0' : f(v);
}

function unitFormatter(unit) {
  if (unit === 'nanoseconds') return v => fmtDuration(v / 1e6);
  if (unit === 'microseconds') return v => fmtDuration(v / 1e3);
  if (unit === 'milliseconds') return v => fmtDuration(v);
  if (unit === 'seconds') return v => fmtDuration(v * 1e3);
  if (unit === 'bytes') return v => fmtBytes(v);
  return v => fmtNumber(v);
}

function hash(s) {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(x);
}

// packageOf: "github.com/a/b.(*T).f" → "github.com/a/b".
function packageOf(name) {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot > 0 ? name.slice(0, dot) : name;
}

// share of a node in a diff side, 0 when the side has no ticks.
function share(v, ticks) { return ticks > 0 ? v / ticks : 0; }

// change is the relative change of a frame's share from A to B:
// +1 = doubled; Infinity when new in B.
export function change(a, b, leftTicks, rightTicks) {
  const sa = share(a, leftTicks), sb = share(b, rightTicks);
  if (sa === 0) return sb === 0 ? 0 : Infinity;
  return (sb - sa) / sa;
}

function diffColour(rel) {
  if (!Number.isFinite(rel)) return 'hsl(0, 80%, 55%)';
  const k = Math.min(1, Math.abs(rel));
  if (k < 0.02) return 'hsl(220, 8%, 70%)';
  return rel > 0 ? `hsl(0, ${40 + 45 * k}%, ${78 - 22 * k}%)` : `hsl(130, ${35 + 40 * k}%, ${75 - 22 * k}%)`;
}

// flameGraph renders tree; opts: {unit, search, focus (a node), onFocus(node),
// onHover(text)}. It returns {el, setSearch(text), setFocus(node)}.
export function flameGraph(tree, { unit = '', onFocus, onHover } = {}) {
  const fmt = formatter(unit);
  const el = h('div', { class: 'fg', role: 'group', 'aria-label': 'flame graph' });
  const status = h('div', { class: 'fg-status small muted', 'aria-live': 'polite' }, 'Hover a frame for its self and total; click one to zoom in.');
  let focus = tree.root;
  let search = '';

  function describe(n) {
    const tot = tree.root.total || 1;
    if (!tree.diff) {
      return `${n.name} — self ${fmt(n.self)} (${fmtPercent(n.self / tot)}), total ${fmt(n.total)} (${fmtPercent(n.total / tot)})`;
    }
    const rel = change(n.a.total, n.b.total, tree.leftTicks, tree.rightTicks);
    const sa = share(n.a.total, tree.leftTicks), sb = share(n.b.total, tree.rightTicks);
    const ch = Number.isFinite(rel) ? (rel >= 0 ? '+' : '') + fmtPercent(rel) : 'new in B';
    return `${n.name} — A: total ${fmt(n.a.total)} (${fmtPercent(sa)}), self ${fmt(n.a.self)}; B: total ${fmt(n.b.total)} (${fmtPercent(sb)}), self ${fmt(n.b.self)}; change ${ch}`;
  }

  function colour(n) {
    if (tree.diff) return diffColour(change(n.a.total, n.b.total, tree.leftTicks, tree.rightTicks));
    if (n === tree.root) return 'hsl(220, 10%, 75%)';
    const hh = hash(packageOf(n.name));
    return `hsl(${10 + hh % 45}, ${65 + hh % 25}%, ${62 + (hh >> 3) % 12}%)`;
  }

  function frame(n, left, width, ancestor) {
    const f = h('div', {
      class: 'fg-frame' + (ancestor ? ' fg-ancestor' : '') + (search && n.name.toLowerCase().includes(search) ? ' fg-match' : ''),
      role: 'button', tabindex: width > 2 ? 0 : -1, title: describe(n), dataset: { name: n.name },
      style: { left: left + '%', width: width + '%', top: n.depth * ROW + 'px', background: colour(n) },
    }, width > 0.6 ? h('span', null, n.name) : null);
    f.addEventListener('click', () => set(n === focus && n.parent ? n.parent : n));
    f.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); set(n); } });
    f.addEventListener('mouseenter', () => { status.textContent = describe(n); if (onHover) onHover(n); });
    return f;
  }

  function draw() {
    const frames = [];
    let depth = 0;
    for (let a = focus.parent; a; a = a.parent) frames.push(frame(a, 0, 100, true));
    const x0 = focus.x, w = focus.total || 1;
    const stack = [focus];
    let count = 0;
    while (stack.length && count < 5000) {
      const n = stack.pop();
      const width = n.total / w * 100;
      if (width < 0.05) continue;
      frames.push(frame(n, (n.x - x0) / w * 100, width, false));
      depth = Math.max(depth, n.depth);
      count++;
      for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
    }
    el.style.height = (depth + 1) * ROW + 'px';
    el.classList.toggle('fg-searching', !!search);
    el.replaceChildren(...frames);
  }

  function set(n) {
    focus = n;
    draw();
    if (onFocus) onFocus(n);
  }

  draw();
  return {
    el: h('div', null, el, status),
    setSearch(text) { search = (text || '').toLowerCase(); draw(); },
    setFocus(n) { focus = n || tree.root; draw(); },
    // find returns the first node (breadth first) named name.
    find(name) {
      const q = [tree.root];
      while (q.length) { const n = q.shift(); if (n.name === name) return n; q.push(...n.children); }
      return null;
    },
  };
}

// path is a node's names from the root's child down to it, to keep the
// zoom in the URL; nodeAt finds it back.
export function pathOf(n) {
  const out = [];
  for (; n && n.parent; n = n.parent) out.unshift(n.name);
  return out;
}

export function nodeAt(tree, names) {
  let n = tree.root;
  for (const name of names) {
    const c = n.children.find(x => x.name === name);
    if (!c) return n;
    n = c;
  }
  return n;
}
