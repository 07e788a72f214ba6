// Completion for the LogQL box: label names after "{" or ",", values after
// name= / name!= / name=~ / name!~ (narrowed by the matchers already
// written, through the API's query= parameter). Keyboard: ↓/↑ choose, Tab
// or Enter (on a chosen entry) take it, Escape closes.
import { h } from '../lib/dom.js';
import { getJSON } from '../lib/api.js';

const MATCHER = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
const MAX_SHOWN = 50;

// context analyses the text before the caret: where the caret is in a
// stream selector and what may be completed there. It returns null, or
// {kind: 'label'|'value', name, prefix, from (where the replaced text
// starts), narrow (a selector of the other complete matchers), quote
// (whether the value needs its opening quote), open (whether a "{" must
// be inserted)}.
export function context(text, caret) {
  const before = text.slice(0, caret);
  let sel = -1, str = null;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (str) {
      if (c === '\\' && str !== '`') i++;
      else if (c === str) str = null;
      continue;
    }
    if (c === '"' || c === '`') str = c;
    else if (c === '{') sel = i;
    else if (c === '}') sel = -1;
  }
  if (sel < 0) {
    // An empty box: offer the label names, opening the selector.
    if (before.trim() === '') return { kind: 'label', prefix: '', from: caret, narrow: '', open: true };
    return null;
  }
  const inside = before.slice(sel + 1);
  const narrowOf = upto => {
    const ms = [...inside.slice(0, upto).matchAll(MATCHER)].map(m => m[0]);
    return ms.length ? `{${ms.join(', ')}}` : '';
  };
  if (str === '"') {
    const m = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(inside);
    if (!m) return null;
    return { kind: 'value', name: m[1], prefix: m[3], from: caret - m[3].length, narrow: narrowOf(m.index), quote: false };
  }
  if (str) return null;
  let m = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(inside);
  if (m) return { kind: 'value', name: m[1], prefix: '', from: caret, narrow: narrowOf(m.index), quote: true };
  m = /(^|[{,]\s*|,\s*)([A-Za-z_][A-Za-z0-9_]*)?$/.exec(inside);
  if (m && (m.index === 0 || /[{,]\s*$/.test(inside.slice(0, m.index + m[1].length)))) {
    const prefix = m[2] || '';
    return { kind: 'label', prefix, from: caret - prefix.length, narrow: narrowOf(m.index), open: false };
  }
  return null;
}

// attach adds completion to the textarea box; range() gives the current
// {start, end} (ms) the suggestions are taken from; signal ends the
// requests when the page goes. It returns the list element to place
// under the box, and isOpen() for the box's Enter handler.
export function attach(box, { range, signal }) {
  const list = h('ul', { class: 'logs-complete', role: 'listbox', id: 'logs-complete', hidden: true, 'aria-label': 'Suggestions' });
  box.setAttribute('role', 'combobox');
  box.setAttribute('aria-autocomplete', 'list');
  box.setAttribute('aria-controls', list.id);
  box.setAttribute('aria-expanded', 'false');
  const cache = new Map();
  let items = [], active = -1, ctxNow = null, seq = 0;

  function fetchList(key, path, params) {
    if (!cache.has(key)) {
      const { start, end } = range();
      const p = getJSON(path, { ...params, start: String(Math.floor(start)) + '000000', end: String(Math.ceil(end)) + '000000' }, { signal })
        .then(r => r.data || [])
        .catch(err => { cache.delete(key); if (err.name !== 'AbortError') console.warn('completion:', err.message); return []; });
      cache.set(key, p);
    }
    return cache.get(key);
  }

  function close() {
    list.hidden = true;
    box.setAttribute('aria-expanded', 'false');
    box.removeAttribute('aria-activedescendant');
    items = []; active = -1;
  }

  function show(values) {
    items = values;
    active = -1;
    list.replaceChildren(...values.map((v, i) => h('li', {
      role: 'option', id: `logs-complete-${i}`, 'aria-selected': 'false', dataset: { value: v },
      onmousedown: ev => { ev.preventDefault(); accept(i); },
    }, v)));
    list.hidden = values.length === 0;
    box.setAttribute('aria-expanded', String(values.length > 0));
  }

  function mark(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) {
      box.setAttribute('aria-activedescendant', `logs-complete-${i}`);
      list.children[i].scrollIntoView({ block: 'nearest' });
    }
  }

  function accept(i) {
    const c = ctxNow;
    const v = items[i];
    if (!c || v === undefined) return;
    let insert, after = box.value.slice(box.selectionStart);
    if (c.kind === 'label') insert = `${c.open ? '{' : ''}${v}="`;
    else {
      const esc = v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      insert = `${c.quote ? '"' : ''}${esc}`;
      // Close the string unless the text after the caret already does.
      if (after.startsWith('"')) after = after.slice(1);
      insert += '"';
    }
    const caret = c.from + insert.length;
    box.value = box.value.slice(0, c.from) + insert + after;
    box.setSelectionRange(caret, caret);
    close();
    box.focus();
    if (c.kind === 'label') update(); // go on with the label's values
  }

  async function update() {
    const c = context(box.value, box.selectionStart);
    ctxNow = c;
    const mine = ++seq;
    if (!c) { close(); return; }
    let values;
    if (c.kind === 'label') {
      values = await fetchList(`l|${c.narrow}`, '/loki/api/v1/labels', { query: c.narrow });
      // detected_level is no stream label, yet selectors take it.
      if (!values.includes('detected_level')) values = [...values, 'detected_level'];
    } else {
      values = await fetchList(`v|${c.name}|${c.narrow}`, `/loki/api/v1/label/${encodeURIComponent(c.name)}/values`, { query: c.narrow });
    }
    if (mine !== seq || signal.aborted) return;
    const p = c.prefix.toLowerCase();
    const shown = values.filter(v => v.toLowerCase().includes(p) && v !== c.prefix)
      .sort((a, b) => (b.toLowerCase().startsWith(p) - a.toLowerCase().startsWith(p)) || a.localeCompare(b))
      .slice(0, MAX_SHOWN);
    show(shown);
  }

  box.addEventListener('input', update);
  box.addEventListener('click', update);
  box.addEventListener('focus', update);
  box.addEventListener('blur', () => setTimeout(close, 100));
  box.addEventListener('keydown', ev => {
    if (list.hidden) return;
    if (ev.key === 'ArrowDown') { ev.preventDefault(); mark(Math.min(items.length - 1, active + 1)); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); mark(Math.max(0, active - 1)); }
    else if (ev.key === 'Escape') { ev.preventDefault(); close(); }
    else if (ev.key === 'Tab' && items.length) { ev.preventDefault(); accept(active >= 0 ? active : 0); }
    else if (ev.key === 'Enter' && active >= 0) { ev.preventDefault(); ev.stopImmediatePropagation(); accept(active); }
  });
  return { list, isOpen: () => !list.hidden && active >= 0, close };
}
