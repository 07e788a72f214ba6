package jaegermonitor

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// FuzzParams: any query string either is refused naming a parameter or
// gives queries that PromQL parses, whose service matchers match exactly
// the services asked for, within the bounds of points per series.
func FuzzParams(f *testing.F) {
	for _, s := range []string{
		"service=checkout&endTs=1764748800000&lookback=3600000&step=60000&ratePer=600000&groupByOperation=true&quantile=0.95",
		"service=a.b&service=c|d&spanKind=server&spanKind=consumer&quantile=0.5",
		`service=we"ird\&service=(x)*&quantile=1`,
		"service=a&lookback=86400000&step=1",
		"service=&quantile=-1",
	} {
		f.Add(s)
	}
	a := New(Options{now: func() time.Time { return time.UnixMilli(1764748800000) }}, nil, nil)
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		params, err := a.parseParams(q)
		if err != nil {
			if _, ok := err.(*paramError); !ok {
				t.Fatalf("%q: error %v is not a parameter error", raw, err)
			}
			return
		}
		if n := params.lookback / params.step; n > time.Duration(a.opts.MaxPoints) {
			t.Fatalf("%q: %d points per series", raw, n)
		}
		quantile, err := quantileParam(q)
		if err != nil {
			quantile = 0.5
		}
		for _, qs := range []string{a.callsQuery(params), a.errorsQuery(params), a.latenciesQuery(params, quantile)} {
			expr, err := p.ParseExpr(qs)
			if err != nil {
				t.Fatalf("%q: query %s: %v", raw, qs, err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				for _, m := range vs.LabelMatchers {
					if m.Name != spanmetrics.LabelService {
						continue
					}
					for _, s := range params.services {
						if !m.Matches(s) {
							t.Fatalf("%q: matcher %s does not match service %q", raw, m, s)
						}
					}
					if m.Matches(params.services[0]+"x") && !slices.Contains(params.services, params.services[0]+"x") {
						t.Fatalf("%q: matcher %s matches a service not asked for", raw, m)
					}
				}
				return nil
			})
		}
	})
}
