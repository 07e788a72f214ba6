package logql

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Stage is one pipeline stage of a log query: *LineFilterStage,
// *ParserStage, *LabelFilterStage, *DropStage, *KeepStage,
// *LineFormatStage, *LabelFormatStage or *DecolorizeStage.
type Stage interface {
	String() string
	stage()
}

// LineFilterOp is the operator of a line filter.
type LineFilterOp int

// Line filter operators.
const (
	LineContains    LineFilterOp = iota // |= "text"
	LineNotContains                     // != "text"
	LineMatch                           // |~ "regexp"
	LineNotMatch                        // !~ "regexp"
	LinePattern                         // |> "<_> error <_>"
	LineNotPattern                      // !> "<_> error <_>"
)

func (op LineFilterOp) String() string {
	switch op {
	case LineContains:
		return "|="
	case LineNotContains:
		return "!="
	case LineMatch:
		return "|~"
	case LineNotMatch:
		return "!~"
	case LinePattern:
		return "|>"
	case LineNotPattern:
		return "!>"
	}
	return "?"
}

// LineFilterStage keeps lines that contain (or do not contain) Text, or
// that match (or do not match) the unanchored RE2 regular expression Text.
// With |> and !>, Text is a pattern whose literals the line must (or must
// not) hold in order, as in the pattern parser, with <_> for any text.
// Or holds the alternatives of `|= "a" or "b"`: a line is kept when it
// matches Text or any of them. Only |=, |~ and |> have alternatives; the
// parser turns `!= "a" or "b"` into two filters, as Loki does.
type LineFilterStage struct {
	Op   LineFilterOp
	Text string
	Or   []string
	// IP makes Text an ip() pattern (|= ip("10.0.0.0/8") or != ip(…)): the
	// line holds (or does not hold) an address in it. It has no Or.
	IP bool
}

// ParserKind names a parser stage.
type ParserKind string

// Parsers.
const (
	ParserJSON    ParserKind = "json"
	ParserLogfmt  ParserKind = "logfmt"
	ParserRegexp  ParserKind = "regexp"
	ParserPattern ParserKind = "pattern"
	ParserUnpack  ParserKind = "unpack"
)

// ParserStage extracts labels from the line. Without Extractions, json
// extracts every scalar field (nested objects flattened with "_") and
// logfmt every key; with Extractions, only the listed ones. regexp and
// pattern take their expression in Param and extract its named captures;
// unpack extracts the string fields of a JSON object and replaces the line
// with its "_entry" field.
type ParserStage struct {
	Kind        ParserKind
	Extractions []LabelExtraction
	Param       string
	// Strict (logfmt --strict) stops at the first malformed pair and sets
	// __error__; without it malformed pairs are skipped. KeepEmpty
	// (--keep-empty) keeps keys without a value as empty labels.
	Strict, KeepEmpty bool
}

// LabelExtraction is one `label="expression"` parameter of a parser: a
// JSON path such as `request.headers["User-Agent"]` or `servers[0]` for
// json, a key for logfmt.
type LabelExtraction struct {
	Label string
	Expr  string
}

// LabelFilterStage keeps the lines whose labels satisfy Filter.
type LabelFilterStage struct {
	Filter LabelFilter
}

func (*LineFilterStage) stage()  {}
func (*ParserStage) stage()      {}
func (*LabelFilterStage) stage() {}

func (s *LineFilterStage) String() string {
	if s.IP {
		return s.Op.String() + " ip(" + strconv.Quote(s.Text) + ")"
	}
	out := s.Op.String() + " " + strconv.Quote(s.Text)
	for _, t := range s.Or {
		out += " or " + strconv.Quote(t)
	}
	return out
}

func (s *ParserStage) String() string {
	var b strings.Builder
	b.WriteString("| ")
	b.WriteString(string(s.Kind))
	switch s.Kind {
	case ParserRegexp, ParserPattern:
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(s.Param))
		return b.String()
	}
	if s.Strict {
		b.WriteString(" --strict")
	}
	if s.KeepEmpty {
		b.WriteString(" --keep-empty")
	}
	for i, x := range s.Extractions {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(x.Label)
		if x.Expr != x.Label {
			b.WriteByte('=')
			b.WriteString(strconv.Quote(x.Expr))
		}
	}
	return b.String()
}

func (s *LabelFilterStage) String() string {
	if s.Filter == nil {
		return "| "
	}
	return "| " + s.Filter.String()
}

// LabelFilter is a condition on labels: *LabelMatchFilter, *NumberFilter,
// *DurationFilter, *BytesFilter, *IPFilter or *BinaryLabelFilter.
type LabelFilter interface {
	String() string
	labelFilter()
}

// CompareOp is the operator of a numeric label filter.
type CompareOp int

// Comparison operators.
const (
	CmpEq  CompareOp = iota // == (also written =)
	CmpNe                   // !=
	CmpGt                   // >
	CmpGte                  // >=
	CmpLt                   // <
	CmpLte                  // <=
)

func (op CompareOp) String() string {
	switch op {
	case CmpEq:
		return "=="
	case CmpNe:
		return "!="
	case CmpGt:
		return ">"
	case CmpGte:
		return ">="
	case CmpLt:
		return "<"
	case CmpLte:
		return "<="
	}
	return "?"
}

// LabelMatchFilter compares a label with a string or a fully anchored
// regular expression; an absent label matches as "".
type LabelMatchFilter struct {
	Matcher *model.LabelMatcher
}

// NumberFilter compares a label parsed as a float with Value. A line whose
// label is absent does not match; one whose label is not a number is kept
// with __error__="LabelFilterErr", as in Loki.
type NumberFilter struct {
	Name  string
	Op    CompareOp
	Value float64
}

// DurationFilter compares a label parsed as a duration ("250ms", "1.5s")
// with Value. A line whose label is absent does not match; one whose label
// is not a duration is kept with __error__="LabelFilterErr".
type DurationFilter struct {
	Name  string
	Op    CompareOp
	Value time.Duration
}

// BytesFilter compares a label parsed as a byte size ("512", "10KB",
// "1.5 MiB") with Value. A line whose label is absent does not match; one
// whose label is not a byte size is kept with __error__="LabelFilterErr".
type BytesFilter struct {
	Name  string
	Op    CompareOp
	Value uint64
}

// BinaryLabelFilter combines two filters with "and" (also written "," or
// by juxtaposition) or "or"; "and" binds tighter.
type BinaryLabelFilter struct {
	And         bool
	Left, Right LabelFilter
}

func (*LabelMatchFilter) labelFilter()  {}
func (*NumberFilter) labelFilter()      {}
func (*DurationFilter) labelFilter()    {}
func (*BytesFilter) labelFilter()       {}
func (*BinaryLabelFilter) labelFilter() {}

func (f *LabelMatchFilter) String() string { return f.Matcher.String() }

func (f *NumberFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + strconv.FormatFloat(f.Value, 'g', -1, 64)
}

func (f *DurationFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + f.Value.String()
}

func (f *BytesFilter) String() string {
	return f.Name + " " + f.Op.String() + " " + formatBytes(f.Value)
}

func (f *BinaryLabelFilter) String() string {
	op := " or "
	if f.And {
		op = " and "
	}
	// Parenthesise children that would otherwise re-associate: an "or"
	// under an "and", and on the right (filters associate to the left)
	// anything but an "and" under an "or".
	left, right := f.Left.String(), f.Right.String()
	if l, ok := f.Left.(*BinaryLabelFilter); ok && f.And && !l.And {
		left = "(" + left + ")"
	}
	if r, ok := f.Right.(*BinaryLabelFilter); ok && (f.And || !r.And) {
		right = "(" + right + ")"
	}
	return left + op + right
}
