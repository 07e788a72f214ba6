package logql

import (
	"errors"
	"strings"
	"testing"
)

func TestParseExprErrors(t *testing.T) {
	f := func(q string, line, col int, msg string) {
		t.Helper()
		_, err := ParseExpr(q)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("ParseExpr(%q): got error %v; want *ParseError", q, err)
		}
		if pe.Line != line || pe.Col != col || !strings.Contains(pe.Msg, msg) {
			t.Errorf("ParseExpr(%q)\ngot  line %d, col %d: %s\nwant line %d, col %d: …%s…", q, pe.Line, pe.Col, pe.Msg, line, col, msg)
		}
	}
	// Selectors.
	f(``, 1, 1, "syntax error: unexpected end of input, expecting { or ( or aggregation")
	f(`{}`, 1, 2, "syntax error: unexpected }, expecting IDENTIFIER")
	f(`{service=api}`, 1, 10, "syntax error: unexpected IDENTIFIER, expecting STRING")
	f(`{service="api"`, 1, 15, "syntax error: unexpected end of input, expecting } or ,")
	f(`{service="api",}`, 1, 16, "syntax error: unexpected }, expecting IDENTIFIER")
	f(`{service=="api"}`, 1, 9, "syntax error: unexpected ==, expecting = or != or =~ or !~")
	f(`{service>"api"}`, 1, 9, "syntax error: unexpected >, expecting = or != or =~ or !~")
	f(`{service="api" level="x"}`, 1, 16, "syntax error: unexpected IDENTIFIER, expecting } or ,")
	f(`{a=~"("}`, 1, 5, "invalid regular expression")
	f(`{a=""}`, 1, 1, "queries require at least one regexp or equality matcher that does not have an empty-compatible value")
	f(`{a!="x", b=~".*"}`, 1, 1, "empty-compatible")
	f(`{a="unterminated}`, 1, 4, "unterminated string")
	f(`{a="b\q"}`, 1, 6, "invalid escape sequence")
	f(`{a="b"} @`, 1, 9, "unexpected character '@'")
	// Positions count lines and characters, not bytes.
	f("{a=\"b\"}\n  |= \"x\"\n  | json\n  | status >= \"500\"", 4, 15, "syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES")
	f(`{a="héllo"} foo`, 1, 13, "syntax error: unexpected IDENTIFIER, expecting pipeline stage or end of input")
	// Line filters.
	f(`{a="b"} |= 5`, 1, 12, "syntax error: unexpected NUMBER, expecting STRING")
	f(`{a="b"} |=`, 1, 11, "syntax error: unexpected end of input, expecting STRING")
	f(`{a="b"} |~ "a(b"`, 1, 12, "invalid regular expression")
	// Pipe stages.
	f(`{a="b"} |`, 1, 10, "syntax error: unexpected end of input, expecting IDENTIFIER or (")
	f(`{a="b"} | "x"`, 1, 11, "syntax error: unexpected STRING, expecting IDENTIFIER or (")
	f(`{a="b"} | line_format "{{.msg}}"`, 1, 11, `unsupported pipeline stage "line_format"`)
	f(`{a="b"} | unwrap latency`, 1, 11, `unsupported pipeline stage "unwrap"`)
	f(`{a="b"} | json a=b`, 1, 18, "syntax error: unexpected IDENTIFIER, expecting STRING")
	f(`{a="b"} | json a="x..y"`, 1, 18, `invalid JSON path "x..y"`)
	f(`{a="b"} | json a="x[y]"`, 1, 18, `invalid JSON path`)
	f(`{a="b"} | json a="x",`, 1, 22, "syntax error: unexpected end of input, expecting IDENTIFIER")
	f(`{a="b"} | logfmt a="has space"`, 1, 20, `invalid logfmt key "has space"`)
	// Label filters.
	f(`{a="b"} | level`, 1, 16, "syntax error: unexpected end of input, expecting = or != or =~ or !~ or > or >= or < or <= or ==")
	f(`{a="b"} | level=`, 1, 17, "syntax error: unexpected end of input, expecting STRING or NUMBER or DURATION or BYTES")
	f(`{a="b"} | level=~5`, 1, 18, "syntax error: unexpected NUMBER, expecting STRING")
	f(`{a="b"} | status > "5"`, 1, 20, "syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES")
	f(`{a="b"} | status == "5"`, 1, 21, "syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES")
	f(`{a="b"} | status > 5xx`, 1, 20, `invalid number, duration or byte size "5xx"`)
	f(`{a="b"} | a="1" and`, 1, 20, "syntax error: unexpected end of input, expecting IDENTIFIER or (")
	f(`{a="b"} | (a="1" or b="2"`, 1, 26, `syntax error: unexpected end of input, expecting ) or and, or, ","`)
	f(`{a="b"} | a=~"("`, 1, 14, "invalid regular expression")
	// Range aggregations.
	f(`count_over_time({a="b"})`, 1, 24, "syntax error: unexpected ), expecting [ or pipeline stage")
	f(`count_over_time({a="b"}[5])`, 1, 25, "syntax error: unexpected NUMBER, expecting DURATION")
	f(`count_over_time({a="b"}[5m]`, 1, 28, "syntax error: unexpected end of input, expecting )")
	f(`count_over_time({a="b"}[0s])`, 1, 25, "invalid range 0s: want a positive duration")
	f(`count_over_time({a="b"}[-5m])`, 1, 25, "invalid range -5m")
	f(`count_over_time([5m])`, 1, 17, "syntax error: unexpected [, expecting { or (")
	f(`count_over_time(({a="b"})`, 1, 26, "syntax error: unexpected end of input, expecting [")
	f(`rate by (a) ({a="b"}[1m])`, 1, 6, "syntax error: unexpected IDENTIFIER, expecting (")
	f(`count_over_tim({a="b"}[5m])`, 1, 1, `unknown function "count_over_tim"`)
	// Vector aggregations.
	f(`sum({a="b"})`, 1, 5, "syntax error: unexpected {, expecting ( or aggregation")
	f(`sum(rate({a="b"}[1m])`, 1, 22, "syntax error: unexpected end of input, expecting )")
	f(`sum by (a rate({a="b"}[1m]))`, 1, 11, "syntax error: unexpected IDENTIFIER, expecting , or )")
	f(`sum by (a) rate({a="b"}[1m])`, 1, 12, "syntax error: unexpected IDENTIFIER, expecting (")
	f(`sum by (a) (rate({a="b"}[1m])) by (b)`, 1, 32, "syntax error: unexpected IDENTIFIER, expecting end of input")
	f(`sum(rate({a="b"}[1m])) foo`, 1, 24, "syntax error: unexpected IDENTIFIER, expecting by, without or end of input")
	f(`(sum(rate({a="b"}[1m]))) by (a)`, 1, 26, "syntax error: unexpected IDENTIFIER, expecting end of input")
	f(`sum by ("a") (rate({a="b"}[1m]))`, 1, 9, "syntax error: unexpected STRING, expecting IDENTIFIER")
	f(`topk(rate({a="b"}[1m]))`, 1, 6, "syntax error: unexpected IDENTIFIER, expecting NUMBER")
	f(`topk(0, rate({a="b"}[1m]))`, 1, 6, "invalid parameter 0 for topk: want a positive integer")
	f(`topk(1.5, rate({a="b"}[1m]))`, 1, 6, "invalid parameter 1.5 for topk")
	f(`topk(5 rate({a="b"}[1m]))`, 1, 8, "syntax error: unexpected IDENTIFIER, expecting ,")
	f(`sum(5, rate({a="b"}[1m]))`, 1, 5, "unsupported parameter for operation sum(5,")
	f(`(rate({a="b"}[1m])`, 1, 19, "syntax error: unexpected end of input, expecting )")
	f(`({a="b"}`, 1, 9, "syntax error: unexpected end of input, expecting pipeline stage or )")
	// Unwrap, offset and the functions over unwrapped values.
	f(`sum_over_time({a="b"}[5m])`, 1, 1, "invalid aggregation sum_over_time without unwrap")
	f(`count_over_time({a="b"} | unwrap x [5m])`, 1, 1, "invalid aggregation count_over_time with unwrap")
	f(`bytes_rate({a="b"} | unwrap x [5m])`, 1, 1, "invalid aggregation bytes_rate with unwrap")
	f(`count_over_time({a="b"}[5m]) by (a)`, 1, 1, "grouping not allowed for count_over_time aggregation")
	f(`sum_over_time({a="b"} | unwrap x [5m]) by (a)`, 1, 1, "grouping not allowed for sum_over_time aggregation")
	f(`rate({a="b"} | unwrap x [5m]) without (a)`, 1, 1, "grouping not allowed for rate aggregation")
	f(`quantile_over_time({a="b"} | unwrap x [5m])`, 1, 20, "syntax error: unexpected {, expecting NUMBER")
	f(`quantile_over_time(0.9 {a="b"} | unwrap x [5m])`, 1, 24, "syntax error: unexpected {, expecting ,")
	f(`avg_over_time(0.9, {a="b"} | unwrap x [5m])`, 1, 15, "unsupported parameter for operation avg_over_time(0.9,")
	f(`sum_over_time({a="b"} | unwrap [5m])`, 1, 32, "syntax error: unexpected [, expecting IDENTIFIER")
	f(`sum_over_time({a="b"} | unwrap size(x) [5m])`, 1, 32, `invalid unwrap conversion "size"`)
	f(`sum_over_time({a="b"} | unwrap bytes(x [5m])`, 1, 40, "syntax error: unexpected [, expecting )")
	f(`sum_over_time({a="b"} | unwrap x | json [5m])`, 1, 41, "syntax error: unexpected [, expecting = or != or =~")
	f(`sum_over_time({a="b"} | unwrap x)`, 1, 33, "syntax error: unexpected ), expecting [ or |")
	f(`count_over_time({a="b"}[5m] offset)`, 1, 35, "syntax error: unexpected ), expecting DURATION")
	f(`count_over_time({a="b"}[5m] offset -5m)`, 1, 36, "invalid offset -5m")
	f(`count_over_time({a="b"}[5m] foo)`, 1, 29, "syntax error: unexpected IDENTIFIER, expecting offset or )")
	f(`count_over_time({a="b"} |= "x" [5m] | json)`, 1, 37, "syntax error: unexpected |, expecting )")
	f(`sum_over_time({a="b"} | unwrap x [5m] | unwrap y)`, 1, 39, "syntax error: unexpected |, expecting )")
	// Binary operations and functions.
	f(`1 > 2`, 1, 3, "comparisons between scalars must use BOOL modifier")
	f(`rate({a="b"}[1m]) + bool 1`, 1, 21, "bool modifier can only be used on comparison operators")
	f(`rate({a="b"}[1m]) and 1`, 1, 19, `set operator "and" not allowed in binary scalar expression`)
	f(`rate({a="b"}[1m]) / on (a) 2`, 1, 19, "vector matching only allowed between instant vectors")
	f(`rate({a="b"}[1m]) or on (a) group_left rate({a="b"}[1m])`, 1, 29, `no grouping allowed for "or" operation`)
	f(`rate({a="b"}[1m]) / {a="b"}`, 1, 21, "syntax error: unexpected {, expecting ( or aggregation or number")
	f(`rate({a="b"}[1m]) /`, 1, 20, "syntax error: unexpected end of input, expecting ( or aggregation or number")
	f(`rate({a="b"}[1m]) / on (a b) rate({a="b"}[1m])`, 1, 27, "syntax error: unexpected IDENTIFIER, expecting , or )")
	f(`{a="b"} / 2`, 1, 9, "syntax error: unexpected /, expecting pipeline stage or end of input")
	f(`vector()`, 1, 8, "syntax error: unexpected ), expecting NUMBER")
	f(`vector(1`, 1, 9, "syntax error: unexpected end of input, expecting )")
	f(`label_replace(rate({a="b"}[1m]), "dst", "$1", "src")`, 1, 52, "syntax error: unexpected ), expecting ,")
	f(`label_replace(rate({a="b"}[1m]), "1dst", "$1", "src", "(.*)")`, 1, 34, "invalid destination label name in label_replace(): 1dst")
	f(`label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*")`, 1, 54, "invalid regular expression in label_replace(): (.*")
	f(`label_replace({a="b"}, "dst", "$1", "src", "(.*)")`, 1, 15, "syntax error: unexpected {, expecting ( or aggregation")
	f(`sum(({a="b"}))`, 1, 5, "syntax error: unexpected log query, expecting ( or aggregation")
	f(`nope(1)`, 1, 1, `unknown function "nope"`)
	f(strings.Repeat("1^", 100)+"1", 1, 130, "expression nested too deeply")
	f(strings.Repeat("(", 100)+`{a="b"}`+strings.Repeat(")", 100), 1, 65, "expression nested too deeply")
	f(`{a="b"} | `+strings.Repeat("(", 100)+`a="1"`+strings.Repeat(")", 100), 1, 75, "expression nested too deeply")
}

func TestParseErrorString(t *testing.T) {
	_, err := ParseExpr(`{service=api}`)
	want := "parse error at line 1, col 10: syntax error: unexpected IDENTIFIER, expecting STRING"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v; want %s", err, want)
	}
}
