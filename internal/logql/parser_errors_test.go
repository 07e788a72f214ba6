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
			t.Fatalf("ParseExpr(%q)\ngot  line %d, col %d: %s\nwant line %d, col %d: …%s…", q, pe.Line, pe.Col, pe.Msg, line, col, msg)
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
	f(`{a="b"} | distinct a`, 1, 11, `unsupported pipeline stage "distinct"`)
	f(`{a="b"} | unwrap latency`, 1, 11, `unsupported pipeline stage "unwrap"`)
	f(`{a="b"} | json a=b`, 1, 18, "syntax error: unexpected IDENTIFIER, expecting STRING")
	f(`{a="b"} | json a="x..y"`, 1, 18, `invalid JSON path "x..y"`)
	f(`{a="b"} | json a="x[y]"`, 1, 18, `invalid JSON path`)
	f(`{a="b"} | json a="x",`, 1, 22, "syntax error: unexpected end of input, expecting IDENTIFIER")
	f(`{a="b"} | logfmt a="has space"`, 1, 20, `invalid logfmt key "has space"`)
	f(`{a="b"} | logfmt --lenient`, 1, 18, `invalid logfmt parser flag --lenient`)
	f(`{a="b"} | json --strict`, 1, 16, `invalid json parser flag --strict`)
	f(`{a="b"} |= "x" or`, 1, 18, "syntax error: unexpected end of input, expecting STRING")
	f(`{a="b"} |~ "x" or "("`, 1, 19, "invalid regular expression")
	f(`{a="b"} | regexp "(\\w+)"`, 1, 18, "at least one named capture must be supplied")
	f(`{a="b"} | regexp "(?P<a>x)(?P<a>y)"`, 1, 18, "duplicate extracted label name 'a'")
	f(`{a="b"} | regexp "("`, 1, 18, "error parsing regexp")
	f(`{a="b"} | regexp`, 1, 17, "syntax error: unexpected end of input, expecting STRING")
	f(`{a="b"} | pattern "<_> x"`, 1, 19, "at least one capture is required")
	f(`{a="b"} | pattern "<a><b>"`, 1, 19, "found consecutive capture '<a><b>': invalid expression")
	f(`{a="b"} | pattern "<a> <a>"`, 1, 19, "duplicate capture name (a): invalid expression")
	f(`({a="b"} | drop a) != "x"`, 1, 20, "syntax error: unexpected !=, expecting pipeline stage or )")
	f(`{a="b"} |> "<x> y"`, 1, 12, "named captures are not allowed: found '<x>'")
	f(`{a="b"} |> "<_><_>"`, 1, 12, "found consecutive capture '<_><_>': invalid expression")
	f(`{a="b"} !> 1`, 1, 12, "syntax error: unexpected NUMBER, expecting STRING")
	f(`{a="b"} |~ ip("10.0.0.1")`, 1, 12, "ip: invalid operation")
	f(`{a="b"} |= ip("x")`, 1, 15, `ip: invalid pattern: "x"`)
	f(`{a="b"} |= ip("10.0.0.1") or "x"`, 1, 27, "syntax error: unexpected IDENTIFIER, expecting pipeline stage or end of input")
	f(`{a="b"} | drop`, 1, 15, "syntax error: unexpected end of input, expecting IDENTIFIER")
	f(`{a="b"} | drop a,`, 1, 18, "syntax error: unexpected end of input, expecting IDENTIFIER")
	f(`{a="b"} | keep a=1`, 1, 18, "syntax error: unexpected NUMBER, expecting STRING")
	f(`{a="b"} | line_format "{{.a"`, 1, 23, "invalid line template: template: line:1: unclosed action")
	f(`{a="b"} | line_format "{{nosuch .a}}"`, 1, 23, `invalid line template: template: line:1: function "nosuch" not defined`)
	f(`{a="b"} | label_format a="{{"`, 1, 26, "invalid template for label 'a'")
	f(`{a="b"} | label_format a=b, a=c`, 1, 29, "multiple label name 'a' not allowed in a single format operation")
	f(`{a="b"} | label_format __error__=b`, 1, 24, "__error__ cannot be formatted")
	f(`{a="b"} | label_format a=1`, 1, 26, "syntax error: unexpected NUMBER, expecting IDENTIFIER or STRING")
	f(`{a="b"} | addr = ip("nope")`, 1, 21, `ip: invalid pattern: "nope"`)
	f(`{a="b"} | addr = ip("10.0.0.9-10.0.0.1")`, 1, 21, `ip: invalid pattern`)
	f(`{a="b"} | addr = ip "x"`, 1, 21, "syntax error: unexpected STRING, expecting (")
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
	f(`sum(5, rate({a="b"}[1m]))`, 1, 5, "syntax error: unexpected NUMBER, expecting ( or aggregation")
	f(`(rate({a="b"}[1m])`, 1, 19, "syntax error: unexpected end of input, expecting )")
	f(`({a="b"}`, 1, 9, "syntax error: unexpected end of input, expecting pipeline stage or )")
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
