package logql

import (
	"errors"
	"reflect"
	"testing"
)

func FuzzParseExpr(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzParseExpr.
	f.Add(`sum by (service) (rate({env="prod"} |~ "(?i)error" | json | status >= 500 [5m]))`)
	f.Add(`{a="b"} | (a="1" or b="2") and c=~"x.*"`)
	f.Fuzz(func(t *testing.T, q string) {
		e, err := ParseExpr(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseExpr(%q): got error %T; want *ParseError", q, err)
			}
			if pe.Line < 1 || pe.Col < 1 || pe.Msg == "" {
				t.Fatalf("ParseExpr(%q): bad error position or message: %#v", q, pe)
			}
			return
		}
		printed := e.String()
		again, err := ParseExpr(printed)
		if err != nil {
			t.Fatalf("ParseExpr(%q) printed as %q, which does not parse: %s", q, printed, err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("ParseExpr(%q) printed as %q, which parses to %q", q, printed, again)
		}
		var sel *LogSelectorExpr
		switch e := e.(type) {
		case *LogSelectorExpr:
			sel = e
		case *RangeAggregationExpr:
			sel = e.Selector
		default:
			return
		}
		p, err := sel.Pipeline()
		if err != nil {
			t.Fatalf("Pipeline of %q: %s", printed, err)
		}
		removes := false // drop, keep and label_format may remove stream labels
		for _, s := range sel.Stages {
			switch s.(type) {
			case *DropStage, *KeepStage, *LabelFormatStage:
				removes = true
			}
		}
		for _, line := range []string{q, `{"a":{"b":1},"level":"error","status":"503"}`, `level=error status=503 msg="x"`,
			`{"_entry":"x \u001b[31mred\u001b[0m","addr":"10.1.2.3"}`} {
			if _, ls, keep := p.ProcessEntry(1, line, testStream); keep && !removes && len(ls) < len(testStream) {
				t.Fatalf("Process(%q) with %q lost stream labels: %s", line, printed, ls)
			}
		}
		sel.RequiredSubstrings()
	})
}
