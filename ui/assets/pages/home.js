// Home: where to start, one entry per signal.
import { h } from '../lib/dom.js';
import { link } from '../lib/route.js';

export function render(view) {
  const entry = (page, title, text) => h('a', { class: 'panel', href: link(page) }, h('h2', null, title), h('p', { class: 'muted' }, text));
  view.append(h('h1', null, 'Vigil'), h('div', { class: 'grid' },
    entry('logs', 'Logs', 'LogQL over every service\'s logs, live tail.'),
    entry('traces', 'Traces', 'Search traces, the span waterfall, the dependency graph.'),
    entry('metrics', 'Metrics', 'PromQL and the golden signals per service and grade.'),
    entry('profiles', 'Profiles', 'Flame graphs of CPU and memory over any range.'),
    entry('dumps', 'Dumps', 'Panics grouped into issues, with their goroutines.')));
}
