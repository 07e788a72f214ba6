// Package query serves the read APIs that Grafana, the Jaeger UI and people
// already use: for logs, Grafana Loki's HTTP API with a LogQL subset.
package query

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/internal/logql"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Entry is one log line of a result.
type Entry struct {
	Timestamp int64
	Line      string
}

// Stream is the result lines of one label set.
type Stream struct {
	Labels  model.Labels
	Entries []Entry
}

// Stats describes the work a query did.
type Stats struct {
	LinesScanned int64
	BytesScanned int64
}

// Engine evaluates LogQL over a storage.LogReader.
type Engine struct {
	store     storage.LogReader
	maxSeries int
	// maxSamples bounds the samples a range aggregation over unwrapped
	// values (or with grouping) holds at once, 16 bytes each.
	maxSamples int
}

// NewEngine returns an engine over s.
func NewEngine(s storage.LogReader) *Engine {
	return &Engine{store: s, maxSeries: defaultMaxSeries, maxSamples: 50_000_000}
}

// defaultMaxSeries is Loki's default max_query_series.
const defaultMaxSeries = 10000

// newEngineWithMaxSeries is NewEngine bounded to maxSeries series per
// query (0: the default).
func newEngineWithMaxSeries(s storage.LogReader, maxSeries int) *Engine {
	e := NewEngine(s)
	if maxSeries > 0 {
		e.maxSeries = maxSeries
	}
	return e
}

// SelectLogs returns up to limit lines matching expr in [start, end),
// newest first when backward, grouped into streams by their labels after
// the pipeline.
func (e *Engine) SelectLogs(ctx context.Context, expr *logql.LogSelectorExpr, start, end int64, limit int, backward bool) ([]Stream, Stats, error) {
	var st Stats
	pl, err := expr.Pipeline()
	if err != nil {
		return nil, st, err
	}
	streams := map[string]*Stream{}
	var order []*Stream
	n := 0
	var keyBuf []byte
	var lblBuf model.Labels
	p := selectParams(expr, start, end, backward)
	err = e.store.Select(ctx, p, func(r *storage.Row) bool {
		st.LinesScanned++
		st.BytesScanned += int64(len(r.Message))
		line, lbls, keep := pl.ProcessEntry(r.Timestamp, r.Message, withTraceLabels(r, &lblBuf))
		if !keep {
			return true
		}
		keyBuf = appendLabelsKey(keyBuf[:0], lbls)
		s := streams[string(keyBuf)]
		if s == nil {
			s = &Stream{Labels: append(model.Labels(nil), lbls...)}
			streams[string(keyBuf)] = s
			order = append(order, s)
		}
		if line == r.Message { // not rewritten: the row's buffer is reused
			line = strings.Clone(line)
		}
		s.Entries = append(s.Entries, Entry{Timestamp: r.Timestamp, Line: line})
		n++
		return limit <= 0 || n < limit
	})
	if err != nil {
		return nil, st, err
	}
	out := make([]Stream, len(order))
	for i, s := range order {
		out[i] = *s
	}
	sort.SliceStable(out, func(i, j int) bool { return labelsLess(out[i].Labels, out[j].Labels) })
	return out, st, nil
}

// Labels of a line's trace context. Like Loki's structured metadata, they
// are not stream labels but label filters see them (`| trace_id="…"`) and
// results carry them, so Grafana links a line to its trace.
const (
	labelTraceID = "trace_id"
	labelSpanID  = "span_id"
)

// withTraceLabels returns the stream labels of r, plus trace_id and span_id
// when the line has them, built in buf.
func withTraceLabels(r *storage.Row, buf *model.Labels) model.Labels {
	if r.TraceID == "" && r.SpanID == "" {
		return r.Labels
	}
	out := append((*buf)[:0], r.Labels...)
	if r.SpanID != "" {
		out = append(out, model.Label{Name: labelSpanID, Value: r.SpanID})
	}
	if r.TraceID != "" {
		out = append(out, model.Label{Name: labelTraceID, Value: r.TraceID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	*buf = out
	return out
}

// selectParams pushes the stream selector and the line filters every
// result line must pass down to the store.
func selectParams(expr *logql.LogSelectorExpr, start, end int64, backward bool) storage.SelectParams {
	return storage.SelectParams{
		Start: start, End: end, Backward: backward, Matchers: expr.Matchers,
		Contains: expr.RequiredSubstrings(), ContainsFold: expr.RequiredFoldSubstrings(),
		ContainsAny: expr.RequiredAlternatives(),
	}
}

func appendLabelsKey(b []byte, ls model.Labels) []byte {
	for _, l := range ls {
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xfe)
	}
	return b
}

func labelsLess(a, b model.Labels) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].Name != b[i].Name {
			return a[i].Name < b[i].Name
		}
		if a[i].Value != b[i].Value {
			return a[i].Value < b[i].Value
		}
	}
	return len(a) < len(b)
}

// Point is one sample of a metric result; T is Unix ns.
type Point struct {
	T int64
	V float64
}

// Series is one metric result series.
type Series struct {
	Labels model.Labels
	Points []Point
}

// EvalRange evaluates a metric expression at start, start+step, … ≤ end.
// An instant query is EvalRange with start == end.
func (e *Engine) EvalRange(ctx context.Context, expr logql.Expr, start, end, step int64) ([]Series, Stats, error) {
	if step <= 0 {
		step = 1
	}
	n := int((end-start)/step) + 1
	var st Stats
	grid, err := e.eval(ctx, expr, start, step, n, &st)
	if err != nil {
		return nil, st, err
	}
	out := make([]Series, 0, len(grid))
	for _, g := range grid {
		s := Series{Labels: g.labels}
		for i, v := range g.values {
			if g.present[i] {
				s.Points = append(s.Points, Point{T: start + int64(i)*step, V: v})
			}
		}
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return labelsLess(out[i].Labels, out[j].Labels) })
	if v, ok := expr.(*logql.VectorAggregationExpr); ok && (v.Op == logql.OpSort || v.Op == logql.OpSortDesc) {
		sortByLastValue(out, v.Op == logql.OpSortDesc)
	}
	return out, st, nil
}

// gridSeries holds a series' value at each step; present marks steps where
// the series has a sample.
type gridSeries struct {
	labels  model.Labels
	values  []float64
	present []bool
}

func (e *Engine) eval(ctx context.Context, expr logql.Expr, start, step int64, n int, st *Stats) ([]*gridSeries, error) {
	switch x := expr.(type) {
	case *logql.RangeAggregationExpr:
		return e.evalRangeAgg(ctx, x, start, step, n, st)
	case *logql.VectorAggregationExpr:
		inner, err := e.eval(ctx, x.Inner, start, step, n, st)
		if err != nil {
			return nil, err
		}
		return aggregate(x, inner, n)
	case *logql.BinOpExpr:
		return e.evalBinOp(ctx, x, start, step, n, st)
	case *logql.LiteralExpr:
		return []*gridSeries{constSeries(model.Labels{}, x.Val, n)}, nil
	case *logql.VectorExpr:
		return []*gridSeries{constSeries(model.Labels{}, x.Val, n)}, nil
	case *logql.LabelReplaceExpr:
		inner, err := e.eval(ctx, x.Inner, start, step, n, st)
		if err != nil {
			return nil, err
		}
		return labelReplace(x, inner, n)
	case *logql.LogSelectorExpr:
		return nil, fmt.Errorf("a log query cannot be evaluated as a metric query; wrap it in count_over_time or rate, or use query_range")
	}
	return nil, fmt.Errorf("unsupported expression %s", expr)
}

// evalCountRange counts, for every step t, the lines in (t-offset-range,
// t-offset] with a difference array: each line adds to the contiguous run
// of steps whose window contains it, in O(1).
func (e *Engine) evalCountRange(ctx context.Context, x *logql.RangeAggregationExpr, start, step int64, n int, st *Stats) ([]*gridSeries, error) {
	rng, off := int64(x.Range), int64(x.Offset)
	type acc struct {
		labels model.Labels
		diff   []float64
		cnt    []int32
	}
	series := newSeriesMap[acc](e.maxSeries)
	// Counts do not depend on the order of the lines.
	err := e.scanRange(ctx, x, start, step, n, st, true, func(lbls model.Labels, r *storage.Row, line string) bool {
		ts := r.Timestamp + off
		i0 := ceilDiv(ts-start, step)
		i1 := floorDiv(ts+rng-1-start, step)
		i0 = max(i0, 0)
		i1 = min(i1, int64(n-1))
		if i0 > i1 {
			return true
		}
		a := series.get(lbls, func(ls model.Labels) *acc {
			return &acc{labels: ls, diff: make([]float64, n+1), cnt: make([]int32, n+1)}
		})
		if a == nil {
			return false
		}
		v := 1.0
		if x.Op == logql.OpBytesOverTime || x.Op == logql.OpBytesRate {
			v = float64(len(line))
		}
		a.diff[i0] += v
		a.diff[i1+1] -= v
		a.cnt[i0]++
		a.cnt[i1+1]--
		return true
	})
	if err != nil {
		return nil, err
	}
	if series.full {
		return nil, tooManySeries(e.maxSeries)
	}
	div := 1.0
	if x.Op == logql.OpRate || x.Op == logql.OpBytesRate {
		div = float64(rng) / 1e9
	}
	out := make([]*gridSeries, 0, len(series.m))
	for _, a := range series.m {
		if err := checkErrorLabel(a.labels); err != nil {
			return nil, err
		}
		g := &gridSeries{labels: a.labels, values: make([]float64, n), present: make([]bool, n)}
		var sum float64
		var cnt int32
		for i := 0; i < n; i++ {
			sum += a.diff[i]
			cnt += a.cnt[i]
			if cnt > 0 {
				g.values[i] = sum / div
				g.present[i] = true
			}
		}
		out = append(out, g)
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
