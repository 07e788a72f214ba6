package query

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// evalRangeAgg evaluates a range aggregation. Counting lines or bytes per
// stream takes the difference-array path; unwrapped values, grouping and
// absent_over_time keep every sample of the window.
func (e *Engine) evalRangeAgg(ctx context.Context, x *logql.RangeAggregationExpr, start, step int64, n int, st *Stats) ([]*gridSeries, error) {
	switch {
	case x.Op == logql.OpAbsentOverTime:
		inner, err := e.evalSampleRange(ctx, x, logql.OpCountOverTime, start, step, n, st)
		if err != nil {
			return nil, err
		}
		return absent(x.Selector, inner, n), nil
	case x.Unwrap == nil && !x.Grouped:
		return e.evalCountRange(ctx, x, start, step, n, st)
	}
	return e.evalSampleRange(ctx, x, x.Op, start, step, n, st)
}

// evalSampleRange collects the samples of each series (after unwrap and
// grouping) and applies op to those in the window (t-offset-range,
// t-offset] of every step t.
func (e *Engine) evalSampleRange(ctx context.Context, x *logql.RangeAggregationExpr, op string, start, step int64, n int, st *Stats) ([]*gridSeries, error) {
	var uw *logql.Unwrapper
	if x.Unwrap != nil {
		var err error
		if uw, err = x.Unwrap.Compile(); err != nil {
			return nil, err
		}
	}
	fn, err := rangeFunc(op, x)
	if err != nil {
		return nil, err
	}
	type acc struct {
		labels model.Labels
		ts     []int64
		vs     []float64
	}
	series := newSeriesMap[acc](e.maxSeries)
	samples := 0
	var sampleBuf, groupBuf model.Labels
	err = e.scanRange(ctx, x, start, step, n, st, false, func(lbls model.Labels, r *storage.Row, line string) bool {
		v := 1.0
		switch {
		case uw != nil:
			var keep bool
			if v, lbls, keep = uw.Sample(line, lbls, sampleBuf); !keep {
				return true
			}
			sampleBuf = lbls
		case op == logql.OpBytesOverTime || op == logql.OpBytesRate:
			v = float64(len(line))
		}
		if x.Grouped && lbls.Get(logql.ErrorLabel) == "" {
			// As in Loki, a sample with an error keeps all its labels so
			// that the error is reported.
			groupBuf = appendGroupLabels(groupBuf[:0], lbls, x.Grouping, x.Without)
			lbls = groupBuf
		}
		a := series.get(lbls, func(ls model.Labels) *acc { return &acc{labels: ls} })
		if a == nil {
			return false
		}
		a.ts = append(a.ts, r.Timestamp)
		a.vs = append(a.vs, v)
		samples++
		return samples <= e.maxSamples
	})
	if err != nil {
		return nil, err
	}
	if series.full {
		return nil, tooManySeries(e.maxSeries)
	}
	if samples > e.maxSamples {
		return nil, badParam("the query keeps more than %d samples in its windows; narrow the stream selector, filter lines or shorten the time range", e.maxSamples)
	}
	rng, off := int64(x.Range), int64(x.Offset)
	out := make([]*gridSeries, 0, len(series.m))
	var scratch []float64
	for _, a := range series.m {
		if err := checkErrorLabel(a.labels); err != nil {
			return nil, err
		}
		g := &gridSeries{labels: a.labels, values: make([]float64, n), present: make([]bool, n)}
		lo, hi := 0, 0 // the window is a.ts[lo:hi]
		for i := 0; i < n; i++ {
			end := start + int64(i)*step - off
			for hi < len(a.ts) && a.ts[hi] <= end {
				hi++
			}
			for lo < hi && a.ts[lo] <= end-rng {
				lo++
			}
			if lo == hi {
				continue
			}
			g.values[i], scratch = fn(a.ts[lo:hi], a.vs[lo:hi], end, scratch)
			g.present[i] = true
		}
		out = append(out, g)
	}
	return out, nil
}

// scanRange runs the pipeline of x over the lines of the windows of n
// steps from start and calls add with each kept row, its labels and its
// line after the pipeline (valid only during the call); add returns false
// to stop.
//
// anyOrder lets the store return the lines in any order, for callers
// whose result does not depend on it.
func (e *Engine) scanRange(ctx context.Context, x *logql.RangeAggregationExpr, start, step int64, n int, st *Stats, anyOrder bool, add func(model.Labels, *storage.Row, string) bool) error {
	pl, err := x.Selector.Pipeline()
	if err != nil {
		return err
	}
	rng, off := int64(x.Range), int64(x.Offset)
	if rng <= 0 {
		return fmt.Errorf("range of %s must be positive", x.Op)
	}
	last := start + int64(n-1)*step
	var lblBuf model.Labels
	p := selectParams(x.Selector, start-off-rng+1, last-off+1, false)
	p.AnyOrder = anyOrder
	return e.store.Select(ctx, p, func(r *storage.Row) bool {
		st.LinesScanned++
		st.BytesScanned += int64(len(r.Message))
		line, lbls, keep := pl.ProcessEntry(r.Timestamp, r.Message, withTraceLabels(r, &lblBuf))
		return !keep || add(lbls, r, line)
	})
}

// seriesMap indexes the accumulators of series by label set, up to limit
// series.
type seriesMap[T any] struct {
	m      map[string]*T
	keyBuf []byte
	limit  int
	full   bool // a series beyond the limit was refused
}

func newSeriesMap[T any](limit int) *seriesMap[T] {
	return &seriesMap[T]{m: map[string]*T{}, limit: limit}
}

// get returns the accumulator of ls, made by newAcc from a copy of ls when
// ls is new, or nil when the map is full.
func (s *seriesMap[T]) get(ls model.Labels, newAcc func(model.Labels) *T) *T {
	s.keyBuf = appendLabelsKey(s.keyBuf[:0], ls)
	if a := s.m[string(s.keyBuf)]; a != nil {
		return a
	}
	if len(s.m) >= s.limit {
		s.full = true
		return nil
	}
	a := newAcc(append(model.Labels(nil), ls...))
	s.m[string(s.keyBuf)] = a
	return a
}

// gridSet collects result series by label set, in order of appearance.
type gridSet struct {
	n     int
	m     map[string]*gridSeries
	order []*gridSeries
}

func newGridSet(n int) *gridSet { return &gridSet{n: n, m: map[string]*gridSeries{}} }

// get returns the series of ls, empty when new.
func (s *gridSet) get(ls model.Labels) *gridSeries {
	key := string(appendLabelsKey(nil, ls))
	g := s.m[key]
	if g == nil {
		g = &gridSeries{labels: ls, values: make([]float64, s.n), present: make([]bool, s.n)}
		s.m[key] = g
		s.order = append(s.order, g)
	}
	return g
}

// windowFunc computes a range aggregation over the samples of one window,
// oldest first, ending at end (Unix ns). scratch is a buffer it may use and
// returns.
type windowFunc func(ts []int64, vs []float64, end int64, scratch []float64) (float64, []float64)

// rangeFunc returns the function of a range aggregation, with Loki's
// semantics (pkg/logql/range_vector.go).
func rangeFunc(op string, x *logql.RangeAggregationExpr) (windowFunc, error) {
	secs := x.Range.Seconds()
	simple := func(f func(vs []float64) float64) windowFunc {
		return func(_ []int64, vs []float64, _ int64, s []float64) (float64, []float64) { return f(vs), s }
	}
	switch op {
	case logql.OpCountOverTime:
		return simple(func(vs []float64) float64 { return float64(len(vs)) }), nil
	case logql.OpRate:
		if x.Unwrap == nil {
			return simple(func(vs []float64) float64 { return float64(len(vs)) / secs }), nil
		}
		return simple(func(vs []float64) float64 { return sum(vs) / secs }), nil
	case logql.OpBytesOverTime, logql.OpSumOverTime:
		return simple(sum), nil
	case logql.OpBytesRate:
		return simple(func(vs []float64) float64 { return sum(vs) / secs }), nil
	case logql.OpAvgOverTime:
		return simple(func(vs []float64) float64 { return sum(vs) / float64(len(vs)) }), nil
	case logql.OpMinOverTime:
		return simple(func(vs []float64) float64 {
			m := vs[0]
			for _, v := range vs {
				if v < m || math.IsNaN(m) {
					m = v
				}
			}
			return m
		}), nil
	case logql.OpMaxOverTime:
		return simple(func(vs []float64) float64 {
			m := vs[0]
			for _, v := range vs {
				if v > m || math.IsNaN(m) {
					m = v
				}
			}
			return m
		}), nil
	case logql.OpStdvarOverTime:
		return simple(variance), nil
	case logql.OpStddevOverTime:
		return simple(func(vs []float64) float64 { return math.Sqrt(variance(vs)) }), nil
	case logql.OpFirstOverTime:
		return simple(func(vs []float64) float64 { return vs[0] }), nil
	case logql.OpLastOverTime:
		return simple(func(vs []float64) float64 { return vs[len(vs)-1] }), nil
	case logql.OpQuantileOverTime:
		q := x.Param
		return func(_ []int64, vs []float64, _ int64, s []float64) (float64, []float64) {
			s = append(s[:0], vs...)
			return quantile(q, s), s
		}, nil
	case logql.OpRateCounter:
		rng := int64(x.Range)
		return func(ts []int64, vs []float64, end int64, s []float64) (float64, []float64) {
			return counterRate(ts, vs, end-rng, end), s
		}, nil
	}
	return nil, fmt.Errorf("unsupported range aggregation %q", op)
}

func sum(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

// variance is the population variance (Welford's algorithm).
func variance(vs []float64) float64 {
	var aux, count, mean float64
	for _, v := range vs {
		count++
		delta := v - mean
		mean += delta / count
		aux += delta * (v - mean)
	}
	return aux / count
}

// quantile is the φ-quantile of vs by linear interpolation between the
// closest ranks, as Prometheus computes it; vs is sorted in place. φ < 0
// gives -Inf, φ > 1 +Inf.
func quantile(q float64, vs []float64) float64 {
	switch {
	case len(vs) == 0:
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	sort.Float64s(vs)
	n := float64(len(vs))
	rank := q * (n - 1)
	lower := math.Max(0, math.Floor(rank))
	upper := math.Min(n-1, lower+1)
	w := rank - math.Floor(rank)
	return vs[int(lower)]*(1-w) + vs[int(upper)]*w
}

// counterRate is the per-second increase of a counter over the window
// (rangeStart, rangeEnd], allowing for resets and extrapolated to the
// window's edges, as Prometheus' rate(); Loki's rate_counter. It is 0 with
// fewer than two samples.
func counterRate(ts []int64, vs []float64, rangeStart, rangeEnd int64) float64 {
	if len(vs) < 2 {
		return 0
	}
	result := vs[len(vs)-1] - vs[0]
	var prev float64
	for _, v := range vs {
		if v < prev {
			result += prev
		}
		prev = v
	}
	toStart := float64(ts[0]-rangeStart) / 1e9
	toEnd := float64(rangeEnd-ts[len(ts)-1]) / 1e9
	sampled := float64(ts[len(ts)-1]-ts[0]) / 1e9
	avgStep := sampled / float64(len(vs)-1)
	threshold := avgStep * 1.1
	if toStart >= threshold {
		toStart = avgStep / 2
	}
	toZero := toStart
	if result > 0 && vs[0] >= 0 {
		toZero = sampled * (vs[0] / result)
	}
	toStart = math.Min(toStart, toZero)
	if toEnd >= threshold {
		toEnd = avgStep / 2
	}
	result *= (sampled + toStart + toEnd) / sampled
	return result / (float64(rangeEnd-rangeStart) / 1e9)
}

// absent returns, at the steps where inner has no sample, a series of value
// 1 labelled with the selector's equality matchers, as Loki does.
func absent(sel *logql.LogSelectorExpr, inner []*gridSeries, n int) []*gridSeries {
	g := &gridSeries{labels: absentLabels(sel), values: make([]float64, n), present: make([]bool, n)}
	for i := 0; i < n; i++ {
		g.present[i] = true
		for _, s := range inner {
			if s.present[i] {
				g.present[i] = false
				break
			}
		}
		if g.present[i] {
			g.values[i] = 1
		}
	}
	return []*gridSeries{g}
}

// absentLabels are the labels of the selector's = matchers; a name that
// also has another matcher is left out.
func absentLabels(sel *logql.LogSelectorExpr) model.Labels {
	m := map[string]string{}
	var other []string
	for _, x := range sel.Matchers {
		if _, seen := m[x.Name]; x.Op == model.MatchEqual && !seen {
			m[x.Name] = x.Value
		} else {
			other = append(other, x.Name)
		}
	}
	for _, name := range other {
		delete(m, name)
	}
	return model.LabelsFromMap(m)
}

// checkErrorLabel refuses a series with an __error__ label, as Loki does:
// errors are not allowed in metrics unless filtered out or dropped.
func checkErrorLabel(ls model.Labels) error {
	v := ls.Get(logql.ErrorLabel)
	if v == "" {
		return nil
	}
	return badParam("pipeline error: '%s' for series: '%s'.\n"+
		"Use a label filter to intentionally skip this error. (e.g | __error__!=\"%s\").\n"+
		"To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"+
		"The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
		v, ls, v)
}

// tooManySeries is Loki's series-limit error, a 400 as in Loki.
func tooManySeries(limit int) error {
	return badParam("maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()", limit)
}
