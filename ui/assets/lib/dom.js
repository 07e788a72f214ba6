// Small DOM and formatting helpers shared by every page.

// h builds an element: h('a', {href: '#/logs', class: 'x', onclick: fn}, 'text', child…).
// Attributes starting with "on" become listeners; null/undefined/false
// children are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// clear empties el and appends children.
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';

// s builds an SVG element, like h.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Formatting.

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

// fmtNumber: 1234.5 → "1.23k"; small numbers keep 3 significant digits.
export function fmtNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return nf.format(v / 1e9) + 'G';
  if (a >= 1e6) return nf.format(v / 1e6) + 'M';
  if (a >= 1e4) return nf.format(v / 1e3) + 'k';
  if (a === 0 || a >= 100) return nf.format(v);
  return Number(v.toPrecision(3)).toString();
}

// fmtPercent: 0.0123 → "1.23%".
export function fmtPercent(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return fmtNumber(v * 100) + '%';
}

// fmtDuration formats milliseconds: 0.012 → "12µs", 1530 → "1.53s".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const a = Math.abs(ms);
  if (a < 1) return fmtNumber(ms * 1000) + 'µs';
  if (a < 1000) return fmtNumber(ms) + 'ms';
  if (a < 60e3) return fmtNumber(ms / 1000) + 's';
  if (a < 3600e3) return fmtNumber(ms / 60e3) + 'min';
  return fmtNumber(ms / 3600e3) + 'h';
}

// fmtBytes: 1536 → "1.5 KiB".
export function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return nf.format(n) + ' ' + units[i];
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

// fmtTime formats epoch milliseconds as local "2026-12-03 12:04:05.123".
export function fmtTime(ms, withMillis = true) {
  const d = new Date(ms);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMillis ? s + '.' + pad(d.getMilliseconds(), 3) : s;
}

// fmtAgo: "3 min ago".
export function fmtAgo(ms, now = Date.now()) {
  const d = (now - ms) / 1000;
  if (d < 60) return `${Math.max(0, Math.round(d))} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}

// debounce delays f until ms after the last call.
export function debounce(f, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => f(...args), ms); };
}
