// The span waterfall of the trace view: one row per span in depth-first
// order, the tree on the left (collapsible), the span's bar on the
// trace's timeline on the right, in its service's colour, with errors
// marked and the critical path drawn over the bars.
//
// Built for traces of 10,000 spans and more: the rows are virtualised —
// only those in the scrolled viewport (plus a margin) are in the DOM, built
// in one DocumentFragment with percentage positions (no layout is read
// while building); collapsing a subtree skips the contiguous rows below it
// (the tree is in depth-first order) in the list of visible rows.
import { h, fmtDuration } from '../lib/dom.js';
import { color } from '../lib/chart.js';

// serviceColors maps each service of the model to a chart colour, in the
// order the services first appear.
export function serviceColors(m) {
  const c = new Map();
  m.services.forEach((svc, i) => c.set(svc, color(i)));
  return c;
}

const ROW_H = 22, OVERSCAN = 20;

function pct(v) { return (v * 100).toFixed(3) + '%'; }

// waterfall renders model m with the critical path segments cp; onSelect(node)
// is called when a span is chosen. It returns {el, select(id)}.
export function waterfall(m, cp, colors, onSelect) {
  const total = m.duration || 1;
  const x = t => (t - m.start) / total;
  const onPath = new Map();
  for (const sg of cp) {
    if (!onPath.has(sg.node)) onPath.set(sg.node, []);
    onPath.get(sg.node).push(sg);
  }

  const head = h('div', { class: 'wf-row wf-head' },
    h('div', { class: 'wf-name' }, 'Service · operation'),
    h('div', { class: 'wf-bar' }, [0, 0.25, 0.5, 0.75, 1].map(f =>
      h('span', { class: 'wf-tick', style: { left: pct(f) } }, fmtDuration(total * f / 1000)))));
  // Virtualised: the body scrolls over a spacer as tall as all the visible
  // rows; only the rows in the viewport (and a margin) exist in the DOM,
  // rebuilt in one DocumentFragment per scroll frame.
  const inner = h('div', { class: 'wf-inner' });
  const body = h('div', { class: 'wf-body', role: 'tree', 'aria-label': 'spans', tabindex: '0' }, inner);
  const collapsed = new Uint8Array(m.rows.length);
  let vis = Int32Array.from(m.rows.keys()); // indices of the rows not under a collapsed span
  let selected = -1;

  function makeRow(i, top) {
    const n = m.rows[i];
    const row = document.createElement('div');
    row.className = 'wf-row' + (n.error ? ' wf-err' : '') + (onPath.has(n) ? ' wf-cp' : '') + (i === selected ? ' selected' : '');
    row.style.top = top + 'px';
    row.dataset.i = i;
    row.setAttribute('role', 'treeitem');
    row.setAttribute('aria-level', n.depth + 1);

    const name = document.createElement('div');
    name.className = 'wf-name';
    name.style.paddingLeft = Math.min(n.depth, 40) * 12 + 'px';
    const tog = document.createElement('button');
    tog.type = 'button';
    tog.className = 'wf-tog';
    if (m.size[i] > 1) {
      tog.textContent = collapsed[i] ? '▸' : '▾';
      tog.setAttribute('aria-expanded', collapsed[i] ? 'false' : 'true');
      tog.setAttribute('aria-label', collapsed[i] ? `expand (${m.size[i] - 1} spans)` : 'collapse');
    } else {
      tog.disabled = true;
      tog.tabIndex = -1;
    }
    const sel = document.createElement('button');
    sel.type = 'button';
    sel.className = 'wf-sel';
    const sw = document.createElement('i');
    sw.style.background = colors.get(n.service);
    const svc = document.createElement('b');
    svc.textContent = n.service;
    sel.append(sw, svc, ' ' + n.span.operationName);
    if (n.error) {
      const e = document.createElement('span');
      e.className = 'badge err';
      e.textContent = 'error';
      sel.append(' ', e);
    }
    name.append(tog, sel);

    const barCell = document.createElement('div');
    barCell.className = 'wf-bar';
    const bar = document.createElement('div');
    bar.className = 'wf-span';
    bar.style.left = pct(x(n.start));
    bar.style.width = `max(1px, ${pct((n.end - n.start) / total)})`;
    bar.style.background = colors.get(n.service);
    barCell.append(bar);
    const segs = onPath.get(n);
    if (segs) {
      for (const sg of segs) {
        const c = document.createElement('div');
        c.className = 'wf-cpseg';
        c.style.left = pct(x(sg.from));
        c.style.width = `max(1px, ${pct((sg.to - sg.from) / total)})`;
        barCell.append(c);
      }
    }
    const lab = document.createElement('span');
    lab.className = 'wf-dur';
    lab.textContent = fmtDuration((n.end - n.start) / 1000);
    const pos = x(n.end);
    if (pos > 0.85) { lab.style.right = pct(1 - x(n.start)); lab.classList.add('wf-left'); } else lab.style.left = `calc(${pct(pos)} + 4px)`;
    barCell.append(lab);
    row.append(name, barCell);
    return row;
  }

  let drawn = '';
  function draw(force) {
    const h0 = body.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(vis.length, Math.ceil((body.scrollTop + h0) / ROW_H) + OVERSCAN);
    const key = `${first}:${last}`;
    if (!force && key === drawn) return;
    drawn = key;
    const focused = document.activeElement && inner.contains(document.activeElement)
      ? [document.activeElement.closest('.wf-row').dataset.i, document.activeElement.className] : null;
    const frag = document.createDocumentFragment();
    for (let k = first; k < last; k++) frag.append(makeRow(vis[k], k * ROW_H));
    inner.replaceChildren(frag);
    if (focused) {
      const el = inner.querySelector(`.wf-row[data-i="${focused[0]}"] .${focused[1].split(' ')[0]}`);
      if (el) el.focus({ preventScroll: true });
    }
  }
  function layout() {
    inner.style.height = vis.length * ROW_H + 'px';
    draw(true);
  }
  let pending = false;
  body.addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(false); });
  });

  // recompute lists the rows not hidden under a collapsed span.
  function recompute() {
    const out = new Int32Array(m.rows.length);
    let k = 0;
    for (let i = 0; i < m.rows.length;) { out[k++] = i; i += collapsed[i] ? m.size[i] : 1; }
    vis = out.subarray(0, k);
  }

  function toggle(i) {
    if (m.size[i] <= 1) return;
    collapsed[i] ^= 1;
    recompute();
    layout();
  }

  function select(id, scroll) {
    const n = m.byID.get(id);
    selected = n ? n.row : -1;
    if (n) {
      // Expand collapsed ancestors so that the row is visible.
      let changed = false;
      for (let p = n.parent; p; p = p.parent) if (collapsed[p.row]) { collapsed[p.row] = 0; changed = true; }
      if (changed) recompute();
      if (scroll) {
        const k = vis.indexOf(n.row);
        const h0 = body.clientHeight || window.innerHeight;
        if (k * ROW_H < body.scrollTop || (k + 1) * ROW_H > body.scrollTop + h0) body.scrollTop = Math.max(0, k * ROW_H - h0 / 3);
      }
    }
    layout();
    return n || null;
  }

  // focusRow scrolls row i into view, draws it and focuses its name.
  function focusRow(i) {
    const k = vis.indexOf(i);
    if (k < 0) return;
    const h0 = body.clientHeight || window.innerHeight;
    if (k * ROW_H < body.scrollTop) body.scrollTop = k * ROW_H;
    else if ((k + 1) * ROW_H > body.scrollTop + h0) body.scrollTop = (k + 1) * ROW_H - h0;
    draw(true);
    const b = inner.querySelector(`.wf-row[data-i="${i}"] .wf-sel`);
    if (b) b.focus({ preventScroll: true });
  }

  // Keyboard: ↑/↓ (Home/End) move between the rows, → expands, ← collapses
  // or goes to the parent, Enter on a name selects the span.
  body.addEventListener('keydown', ev => {
    const keys = ['ArrowDown', 'ArrowUp', 'ArrowLeft', 'ArrowRight', 'Home', 'End'];
    if (!keys.includes(ev.key) || !vis.length) return;
    ev.preventDefault();
    const cur = ev.target.closest && ev.target.closest('.wf-row');
    const i = cur ? +cur.dataset.i : vis[0];
    const n = m.rows[i];
    if (ev.key === 'ArrowRight') { if (collapsed[i]) toggle(i); focusRow(i); return; }
    if (ev.key === 'ArrowLeft') {
      if (m.size[i] > 1 && !collapsed[i]) { toggle(i); focusRow(i); } else if (n.parent) focusRow(n.parent.row);
      return;
    }
    let k = cur ? vis.indexOf(i) : -1;
    if (ev.key === 'Home') k = 0;
    else if (ev.key === 'End') k = vis.length - 1;
    else k = Math.max(0, Math.min(vis.length - 1, k + (ev.key === 'ArrowDown' ? 1 : -1)));
    focusRow(vis[k]);
  });

  body.addEventListener('click', ev => {
    const row = ev.target.closest('.wf-row');
    if (!row) return;
    const i = +row.dataset.i;
    if (ev.target.closest('.wf-tog')) { toggle(i); return; }
    onSelect(m.rows[i]);
  });

  const el = h('div', { class: 'wf', dataset: { rows: String(m.rows.length) } }, head, body);
  // The first rows are drawn once the element is in the page (its height is known).
  requestAnimationFrame(layout);
  layout();
  return { el, select, toggle };
}
