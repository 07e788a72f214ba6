// Package logql parses the subset of Grafana Loki's LogQL that Vigil serves
// and evaluates the line pipelines of log queries.
//
// A query is either a log query, a stream selector followed by pipeline
// stages:
//
//	{service="api", level!="debug"} |= "timeout" | json | status >= 500
//
// or a metric query over a log query:
//
//	sum by (service) (rate({env="prod"} |~ "(?i)error" [5m]))
//
// or an operation between metric queries and numbers:
//
//	sum(rate({app="api"} | json | unwrap bytes(size) [1m])) / 60 or vector(0)
//
// ParseExpr returns the syntax tree; an evaluator walks it with a type
// switch over the Expr node types. Every node prints back as valid LogQL.
package logql

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Expr is a parsed query: *LogSelectorExpr, *RangeAggregationExpr,
// *VectorAggregationExpr, *BinOpExpr, *LiteralExpr, *VectorExpr or
// *LabelReplaceExpr.
type Expr interface {
	// String prints the expression as LogQL that parses back to an equal
	// expression.
	String() string
	expr()
}

// LogSelectorExpr is a log query: a stream selector and the pipeline
// stages applied to each line of the selected streams, in order.
type LogSelectorExpr struct {
	Matchers []*model.LabelMatcher
	Stages   []Stage
}

// Range aggregation operators; the list with their rules is in
// ast_metric.go.
const (
	OpCountOverTime = "count_over_time"
	OpRate          = "rate"
	OpBytesOverTime = "bytes_over_time"
	OpBytesRate     = "bytes_rate"
)

// RangeAggregationExpr turns the lines a log query selects over a sliding
// window into samples, one series per label set: count_over_time(...[5m]),
// or, with Unwrap, aggregates the values of a label over the window:
// quantile_over_time(0.99, {…} | json | unwrap latency [5m]) by (path).
type RangeAggregationExpr struct {
	Op       string // one of the Op…OverTime / OpRate… constants
	Range    time.Duration
	Offset   time.Duration // the window ends Offset before the step
	Selector *LogSelectorExpr
	Unwrap   *UnwrapExpr // nil unless the query has | unwrap
	// Param is φ of quantile_over_time, 0 otherwise.
	Param float64
	// Grouped is set when the aggregation has by (…) or without (…):
	// samples are grouped by Grouping (or all labels but Grouping when
	// Without) before the function is applied.
	Grouped  bool
	Grouping []string
	Without  bool
}

// Vector aggregation operators.
const (
	OpSum      = "sum"
	OpCount    = "count"
	OpMin      = "min"
	OpMax      = "max"
	OpAvg      = "avg"
	OpTopK     = "topk"
	OpBottomK  = "bottomk"
	OpStddev   = "stddev"
	OpStdvar   = "stdvar"
	OpSort     = "sort"
	OpSortDesc = "sort_desc"
)

// VectorAggregationExpr aggregates the series of Inner, a metric
// expression, grouped by (or without) labels: sum by (a, b) (...).
type VectorAggregationExpr struct {
	Op string
	// Grouping lists the labels of "by (…)", or of "without (…)" when
	// Without is set. A nil Grouping without Without aggregates all series
	// into one.
	Grouping []string
	Without  bool
	// Param is k for topk and bottomk, 0 otherwise.
	Param int
	Inner Expr
}

func (*LogSelectorExpr) expr()       {}
func (*RangeAggregationExpr) expr()  {}
func (*VectorAggregationExpr) expr() {}

func (e *LogSelectorExpr) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range e.Matchers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	for _, s := range e.Stages {
		b.WriteByte(' ')
		b.WriteString(s.String())
	}
	return b.String()
}

func (e *VectorAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Without || len(e.Grouping) > 0 {
		writeGrouping(&b, e.Grouping, e.Without)
		b.WriteByte(' ')
	}
	b.WriteByte('(')
	if e.Op == OpTopK || e.Op == OpBottomK {
		b.WriteString(strconv.Itoa(e.Param))
		b.WriteString(", ")
	}
	if e.Inner != nil {
		b.WriteString(e.Inner.String())
	}
	b.WriteByte(')')
	return b.String()
}
