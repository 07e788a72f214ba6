package jaegermonitor

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/vigilhq/vigil/internal/spanmetrics"
)

// The queries are Jaeger's Prometheus metrics reader's, over the
// spanmetrics names: a rate of the calls, errors over calls, and a
// quantile of the latency histogram.

func (a *API) calls(w http.ResponseWriter, r *http.Request) error {
	p, err := a.parseParams(r.URL.Query())
	if err != nil {
		return err
	}
	fam, err := a.callRates(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, fam)
	return nil
}

func (a *API) callRates(ctx context.Context, p params) (family, error) {
	return a.run(ctx, p, a.callsQuery(p), "service_call_rate", "calls/sec, grouped by service")
}

func (a *API) callsQuery(p params) string {
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]))", groupBy(p, false), a.opts.CallsMetric, selector(p), rangeOf(p))
}

// errorsQuery is errors over calls; a service (or operation) with calls
// and no errors has a ratio of 0, not no data — Jaeger answers so only
// when no service at all has errors.
func (a *API) errorsQuery(p params) string {
	sel, by, rng := selector(p), groupBy(p, false), rangeOf(p)
	calls := a.callsQuery(p)
	return fmt.Sprintf("(sum by (%s) (rate(%s{%s, %s=%q}[%s])) or 0 * %s) / %s",
		by, a.opts.CallsMetric, sel, spanmetrics.LabelStatusCode, spanmetrics.StatusError, rng, calls, calls)
}

// latenciesQuery is the quantile q of the native histogram where there is
// one, of the classic buckets otherwise (a scrape that took only those).
func (a *API) latenciesQuery(p params, q float64) string {
	qf, sel, rng := strconv.FormatFloat(q, 'g', -1, 64), selector(p), rangeOf(p)
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s{%s}[%s]))) or histogram_quantile(%s, sum by (%s) (rate(%s_bucket{%s}[%s])))",
		qf, groupBy(p, false), a.opts.DurationMetric, sel, rng,
		qf, groupBy(p, true), a.opts.DurationMetric, sel, rng)
}

func (a *API) errors(w http.ResponseWriter, r *http.Request) error {
	p, err := a.parseParams(r.URL.Query())
	if err != nil {
		return err
	}
	fam, err := a.run(r.Context(), p, a.errorsQuery(p), "service_error_rate", "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service")
	if err != nil {
		return err
	}
	writeJSON(w, fam)
	return nil
}

func (a *API) latencies(w http.ResponseWriter, r *http.Request) error {
	q, err := quantileParam(r.URL.Query())
	if err != nil {
		return err
	}
	p, err := a.parseParams(r.URL.Query())
	if err != nil {
		return err
	}
	fam, err := a.run(r.Context(), p, a.latenciesQuery(p, q), "service_latencies", fmt.Sprintf("%.2fth quantile latency, grouped by service", q))
	if err != nil {
		return err
	}
	writeJSON(w, fam)
	return nil
}

// selector matches the services and span kinds of p.
func selector(p params) string {
	return fmt.Sprintf("%s=~%s, %s=~%s", spanmetrics.LabelService, quoteAlternatives(p.services),
		spanmetrics.LabelSpanKind, quoteAlternatives(p.spanKinds))
}

// quoteAlternatives is a PromQL string of a regular expression matching
// exactly one of vs.
func quoteAlternatives(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = regexp.QuoteMeta(v)
	}
	return strconv.Quote(strings.Join(q, "|"))
}

func groupBy(p params, le bool) string {
	by := spanmetrics.LabelService
	if p.groupByOperation {
		by += ", " + spanmetrics.LabelOperation
	}
	if le {
		by += ", le"
	}
	return by
}

// rangeOf is the rate window, in milliseconds: PromQL takes any integer
// number of them.
func rangeOf(p params) string { return strconv.FormatInt(p.ratePer.Milliseconds(), 10) + "ms" }

// run evaluates qs over p's range into a family named as Jaeger names it.
func (a *API) run(ctx context.Context, p params, qs, name, help string) (family, error) {
	if p.groupByOperation {
		name = strings.Replace(name, "service", "service_operation", 1)
		help += " & operation"
	}
	q, err := a.engine.NewRangeQuery(ctx, a.queryable, nil, qs, p.end.Add(-p.lookback), p.end, p.step)
	if err != nil {
		return family{}, fmt.Errorf("cannot prepare query %s: %w", qs, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return family{}, fmt.Errorf("query %s: %w", qs, res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		return family{}, fmt.Errorf("query %s: %w", qs, err)
	}
	return toFamily(name, help, m), nil
}

func toFamily(name, help string, m promql.Matrix) family {
	fam := family{Name: name, Type: "GAUGE", Help: help}
	for _, s := range m {
		out := metric{}
		s.Metric.Range(func(l labels.Label) {
			n := l.Name
			if n == spanmetrics.LabelOperation {
				n = "operation" // the label the Jaeger UI reads
			}
			out.Labels = append(out.Labels, label{Name: n, Value: l.Value})
		})
		for _, pt := range s.Floats {
			out.MetricPoints = append(out.MetricPoints, point{GaugeValue: gauge{DoubleValue: protoDouble(pt.F)}, Timestamp: timestamp(pt.T)})
		}
		fam.Metrics = append(fam.Metrics, &out)
	}
	return fam
}
