// Metrics: a PromQL explorer (#/metrics?query=…) and the golden-signals
// dashboard per service, grade and datacenter (#/metrics/golden, or
// #/metrics?service=… as the other pages link a service's metrics).
import { h } from '../lib/dom.js';
import { link } from '../lib/route.js';
import { renderExplore } from './metrics-explore.js';
import { renderGolden } from './metrics-golden.js';

const GOLDEN_PARAMS = ['service', 'grade', 'dc', 'signal'];

export function render(view, ctx) {
  const p = ctx.params;
  const golden = !p.get('query') && (ctx.path[0] === 'golden' || GOLDEN_PARAMS.some(k => p.get(k)));
  const keep = { from: p.get('from'), to: p.get('to') };
  view.append(h('h1', null, 'Metrics'), h('nav', { class: 'tabs', 'aria-label': 'Metrics views' },
    h('a', { href: link('metrics', [], keep), 'aria-selected': String(!golden) }, 'Explore'),
    h('a', { href: link('metrics', ['golden'], { ...keep, service: p.get('service') }), 'aria-selected': String(golden) }, 'Golden signals')));
  return golden ? renderGolden(view, ctx) : renderExplore(view, ctx);
}
