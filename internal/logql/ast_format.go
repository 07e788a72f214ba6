package logql

import (
	"strconv"
	"strings"
)

// NamedMatcher is one label of a drop or keep stage: a bare name, or a
// matcher `name="value"` (any of = != =~ !~) that applies only when the
// label's value matches.
type NamedMatcher struct {
	Name    string
	Matcher *LabelMatchFilter // nil for a bare name
}

func (m NamedMatcher) String() string {
	if m.Matcher != nil {
		return m.Matcher.String()
	}
	return m.Name
}

// DropStage removes labels: `| drop level, method="GET"`. Dropping
// __error__ or __error_details__ clears the error a parser set.
type DropStage struct {
	Labels []NamedMatcher
}

// KeepStage removes every label but the listed ones: `| keep level,
// method="GET"`. It never removes __error__ or __error_details__.
type KeepStage struct {
	Labels []NamedMatcher
}

// LineFormatStage rewrites the line with a Go text/template over the
// labels: `| line_format "{{.status}} {{__line__}}"`.
type LineFormatStage struct {
	Template string
}

// LabelFormat is one operation of a label_format stage: a rename `dst=src`
// or a template `dst="{{.src}}"`.
type LabelFormat struct {
	Dst string
	// Src is the label renamed to Dst when Rename is set, else the template.
	Src    string
	Rename bool
}

// LabelFormatStage renames labels or sets them from templates:
// `| label_format status=code, msg="{{.level}}: {{__line__}}"`.
type LabelFormatStage struct {
	Formats []LabelFormat
}

// DecolorizeStage strips ANSI colour escape sequences from the line.
type DecolorizeStage struct{}

func (*DropStage) stage()        {}
func (*KeepStage) stage()        {}
func (*LineFormatStage) stage()  {}
func (*LabelFormatStage) stage() {}
func (*DecolorizeStage) stage()  {}

func namedMatchersString(kw string, ms []NamedMatcher) string {
	var b strings.Builder
	b.WriteString("| ")
	b.WriteString(kw)
	for i, m := range ms {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	return b.String()
}

func (s *DropStage) String() string       { return namedMatchersString("drop", s.Labels) }
func (s *KeepStage) String() string       { return namedMatchersString("keep", s.Labels) }
func (s *LineFormatStage) String() string { return "| line_format " + strconv.Quote(s.Template) }
func (*DecolorizeStage) String() string   { return "| decolorize" }

func (s *LabelFormatStage) String() string {
	var b strings.Builder
	b.WriteString("| label_format ")
	for i, f := range s.Formats {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Dst)
		b.WriteByte('=')
		if f.Rename {
			b.WriteString(f.Src)
		} else {
			b.WriteString(strconv.Quote(f.Src))
		}
	}
	return b.String()
}

// IPFilter keeps the lines whose label holds an IPv4 or IPv6 address in
// Pattern (a single address, a CIDR range or a range "a-b"), or, with
// Negate, not in it: `| addr = ip("192.168.0.0/16")`.
type IPFilter struct {
	Name    string
	Negate  bool
	Pattern string
}

func (*IPFilter) labelFilter() {}

func (f *IPFilter) String() string {
	op := " = "
	if f.Negate {
		op = " != "
	}
	return f.Name + op + "ip(" + strconv.Quote(f.Pattern) + ")"
}
