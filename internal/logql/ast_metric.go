package logql

import (
	"strconv"
	"strings"
)

// Range aggregation operators over unwrapped values, and absent_over_time.
const (
	OpAbsentOverTime   = "absent_over_time"
	OpSumOverTime      = "sum_over_time"
	OpAvgOverTime      = "avg_over_time"
	OpMinOverTime      = "min_over_time"
	OpMaxOverTime      = "max_over_time"
	OpStddevOverTime   = "stddev_over_time"
	OpStdvarOverTime   = "stdvar_over_time"
	OpQuantileOverTime = "quantile_over_time"
	OpFirstOverTime    = "first_over_time"
	OpLastOverTime     = "last_over_time"
	OpRateCounter      = "rate_counter"
)

// rangeOpRules says, per range operator, whether it takes an unwrapped
// label (never, always or optionally) and whether it accepts by/without, as
// Loki's validation does.
var rangeOpRules = map[string]struct {
	unwrap  int // 0: never, 1: required, 2: optional
	grouped bool
}{
	OpCountOverTime:    {0, false},
	OpBytesOverTime:    {0, false},
	OpBytesRate:        {0, false},
	OpRate:             {2, false},
	OpAbsentOverTime:   {2, false},
	OpSumOverTime:      {1, false},
	OpRateCounter:      {1, false},
	OpAvgOverTime:      {1, true},
	OpMinOverTime:      {1, true},
	OpMaxOverTime:      {1, true},
	OpStddevOverTime:   {1, true},
	OpStdvarOverTime:   {1, true},
	OpQuantileOverTime: {1, true},
	OpFirstOverTime:    {1, true},
	OpLastOverTime:     {1, true},
}

// Unwrap conversions.
const (
	ConvFloat           = ""                 // unwrap latency
	ConvDuration        = "duration"         // unwrap duration(took): seconds
	ConvDurationSeconds = "duration_seconds" // the same
	ConvBytes           = "bytes"            // unwrap bytes(size): bytes
)

// UnwrapExpr takes a sample's value from a label: `| unwrap latency`,
// `| unwrap duration(took) | __error__=""`. A line without the label gives
// no sample; a value that does not convert gives a sample with
// __error__="SampleExtractionErr". Filters run after the conversion.
type UnwrapExpr struct {
	Label   string
	Conv    string
	Filters []LabelFilter
}

func (u *UnwrapExpr) String() string {
	var b strings.Builder
	b.WriteString("| unwrap ")
	if u.Conv != ConvFloat {
		b.WriteString(u.Conv + "(" + u.Label + ")")
	} else {
		b.WriteString(u.Label)
	}
	for _, f := range u.Filters {
		b.WriteString(" | ")
		b.WriteString(f.String())
	}
	return b.String()
}

func (e *RangeAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteByte('(')
	if e.Op == OpQuantileOverTime {
		b.WriteString(formatFloat(e.Param))
		b.WriteString(", ")
	}
	if e.Selector != nil {
		b.WriteString(e.Selector.String())
		if len(e.Selector.Stages) > 0 || e.Unwrap != nil {
			b.WriteByte(' ')
		}
	}
	if e.Unwrap != nil {
		b.WriteString(e.Unwrap.String())
		b.WriteByte(' ')
	}
	b.WriteString("[" + formatDuration(e.Range) + "]")
	if e.Offset != 0 {
		b.WriteString(" offset " + formatDuration(e.Offset))
	}
	b.WriteByte(')')
	if e.Grouped {
		writeGrouping(&b, e.Grouping, e.Without)
	}
	return b.String()
}

func writeGrouping(b *strings.Builder, names []string, without bool) {
	if without {
		b.WriteString(" without (")
	} else {
		b.WriteString(" by (")
	}
	b.WriteString(strings.Join(names, ", "))
	b.WriteByte(')')
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Binary operators, by precedence from loosest to tightest: or; and,
// unless; comparisons; + -; * / %; ^ (right-associative).
const (
	OpOr     = "or"
	OpAnd    = "and"
	OpUnless = "unless"
	OpEq     = "=="
	OpNe     = "!="
	OpGt     = ">"
	OpGte    = ">="
	OpLt     = "<"
	OpLte    = "<="
	OpAdd    = "+"
	OpSub    = "-"
	OpMul    = "*"
	OpDiv    = "/"
	OpMod    = "%"
	OpPow    = "^"
)

// IsComparison reports whether op is == != > >= < <=.
func IsComparison(op string) bool {
	switch op {
	case OpEq, OpNe, OpGt, OpGte, OpLt, OpLte:
		return true
	}
	return false
}

// IsSetOp reports whether op is and, or or unless.
func IsSetOp(op string) bool { return op == OpAnd || op == OpOr || op == OpUnless }

// BinOpExpr is a binary operation between metric expressions or scalars:
// rate(…) / 60, a > bool 5, a / on (host) group_left b, a or vector(0).
type BinOpExpr struct {
	Op          string
	Left, Right Expr
	// Bool makes a comparison return 0 or 1 instead of filtering.
	Bool bool
	// Matching is how the series of two vectors pair up; nil matches on
	// all labels, one to one.
	Matching *VectorMatching
}

// Cardinalities of a vector matching.
const (
	CardOneToOne  = ""
	CardManyToOne = "group_left"
	CardOneToMany = "group_right"
)

// VectorMatching is on (…) / ignoring (…) with group_left / group_right.
type VectorMatching struct {
	On      bool     // on (Labels); otherwise ignoring (Labels)
	Labels  []string // matching labels
	Card    string   // one of the Card… constants
	Include []string // labels group_left/right copy from the "one" side
}

// LiteralExpr is a number: a scalar.
type LiteralExpr struct {
	Val float64
}

// VectorExpr is vector(N): one series without labels of value N.
type VectorExpr struct {
	Val float64
}

// LabelReplaceExpr is label_replace(v, "dst", "replacement", "src",
// "regex"): where the fully anchored Regex matches label Src, Dst is set to
// Replacement with $1… expanded (removed when that is empty).
type LabelReplaceExpr struct {
	Inner       Expr
	Dst         string
	Replacement string
	Src         string
	Regex       string
}

func (*BinOpExpr) expr()        {}
func (*LiteralExpr) expr()      {}
func (*VectorExpr) expr()       {}
func (*LabelReplaceExpr) expr() {}

func (e *BinOpExpr) String() string {
	side := func(x Expr) string {
		if _, ok := x.(*BinOpExpr); ok {
			return "(" + x.String() + ")"
		}
		return x.String()
	}
	var b strings.Builder
	b.WriteString(side(e.Left))
	b.WriteString(" " + e.Op)
	if e.Bool {
		b.WriteString(" bool")
	}
	if m := e.Matching; m != nil {
		if m.On {
			b.WriteString(" on (")
		} else {
			b.WriteString(" ignoring (")
		}
		b.WriteString(strings.Join(m.Labels, ", ") + ")")
		if m.Card != CardOneToOne {
			b.WriteString(" " + m.Card + " (" + strings.Join(m.Include, ", ") + ")")
		}
	}
	b.WriteByte(' ')
	b.WriteString(side(e.Right))
	return b.String()
}

func (e *LiteralExpr) String() string { return formatFloat(e.Val) }

func (e *VectorExpr) String() string { return "vector(" + formatFloat(e.Val) + ")" }

func (e *LabelReplaceExpr) String() string {
	q := strconv.Quote
	return "label_replace(" + e.Inner.String() + ", " + q(e.Dst) + ", " + q(e.Replacement) + ", " + q(e.Src) + ", " + q(e.Regex) + ")"
}

// IsScalar reports whether e evaluates to a scalar: a number or an
// operation between scalars.
func IsScalar(e Expr) bool {
	switch e := e.(type) {
	case *LiteralExpr:
		return true
	case *BinOpExpr:
		return IsScalar(e.Left) && IsScalar(e.Right)
	}
	return false
}
