package logql

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// TestParseExpr checks that valid queries parse and print in canonical
// form, and that the printed form parses back to an equal tree.
func TestParseExpr(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		e, err := ParseExpr(q)
		if err != nil {
			t.Fatalf("ParseExpr(%q): unexpected error: %s", q, err)
		}
		if got := e.String(); got != want {
			t.Fatalf("ParseExpr(%q).String()\ngot  %s\nwant %s", q, got, want)
		}
		again, err := ParseExpr(e.String())
		if err != nil {
			t.Fatalf("ParseExpr(%q) of the printed form: %s", e.String(), err)
		}
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip of %q: got %#v; want %#v", q, again, e)
		}
	}
	// Stream selectors.
	f(`{service="api"}`, `{service="api"}`)
	f(`{service="api", level!="debug", host=~"web-.*", env!~"dev|test"}`, `{service="api", level!="debug", host=~"web-.*", env!~"dev|test"}`)
	f("{ service = `a\\b` }", `{service="a\\b"}`)
	f(`{a="tab\there \"q\" \u00e9"}`, `{a="tab\there \"q\" é"}`)
	f("{a=\"\\xff\"}", `{a="\xff"}`)
	f("\n  {a=\"b\"} # comment\n", `{a="b"}`)
	// Line filters.
	f(`{a="b"} |= "err" != "timeout" |~ "(?i)fail(ed|ure)" !~ "health.*"`, `{a="b"} |= "err" != "timeout" |~ "(?i)fail(ed|ure)" !~ "health.*"`)
	f(`{a="b"}|="x"`, `{a="b"} |= "x"`)
	f("{a=\"b\"} |~ `\\d+ms`", `{a="b"} |~ "\\d+ms"`)
	// Parsers.
	f(`{a="b"} | json`, `{a="b"} | json`)
	f(`{a="b"} | logfmt | json`, `{a="b"} | logfmt | json`)
	f(`{a="b"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", status`, `{a="b"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", status`)
	f(`{a="b"} | json status="status"`, `{a="b"} | json status`)
	f(`{a="b"} | logfmt lvl="level", msg`, `{a="b"} | logfmt lvl="level", msg`)
	// Label filters.
	f(`{a="b"} | json | level="error"`, `{a="b"} | json | level="error"`)
	f(`{a="b"} | level!="info" | path=~"/api/.*" | ua!~".*bot.*"`, `{a="b"} | level!="info" | path=~"/api/.*" | ua!~".*bot.*"`)
	f(`{a="b"} | status >= 500`, `{a="b"} | status >= 500`)
	f(`{a="b"} | latency > 250.5 | x < -3 | y <= 1e3 | z == 2 | w = 3 | v != 4`, `{a="b"} | latency > 250.5 | x < -3 | y <= 1000 | z == 2 | w == 3 | v != 4`)
	f(`{a="b"} | duration > 1s | d2 <= 1h30m | d3 == 250ms`, `{a="b"} | duration > 1s | d2 <= 1h30m0s | d3 == 250ms`)
	f(`{a="b"} | size > 10KB | s2 < 1MiB | s3 >= 1500B`, `{a="b"} | size > 10KB | s2 < 1MiB | s3 >= 1500B`)
	f(`{a="b"} | a="1" and b="2"`, `{a="b"} | a="1" and b="2"`)
	f(`{a="b"} | a="1", b="2" c="3"`, `{a="b"} | a="1" and b="2" and c="3"`)
	f(`{a="b"} | a="1" or b="2" and c="3"`, `{a="b"} | a="1" or b="2" and c="3"`)
	f(`{a="b"} | (a="1" or b="2") and c="3"`, `{a="b"} | (a="1" or b="2") and c="3"`)
	f(`{a="b"} | a="1" and (b="2" and c="3")`, `{a="b"} | a="1" and (b="2" and c="3")`)
	f(`{a="b"} | __error__=""`, `{a="b"} | __error__=""`)
	f(`{a="b"} | json="x" | logfmt > 2`, `{a="b"} | json="x" | logfmt > 2`)
	f(`({a="b"} |= "x") | json`, `{a="b"} |= "x" | json`)
	// Line filters with or.
	f(`{a="b"} |= "x" or "y" or "z"`, `{a="b"} |= "x" or "y" or "z"`)
	f(`{a="b"} |~ "x.*" or "y"`, `{a="b"} |~ "x.*" or "y"`)
	f(`{a="b"} != "x" or "y"`, `{a="b"} != "x" != "y"`)
	f(`{a="b"} !~ "x" or "y" |= "z"`, `{a="b"} !~ "x" !~ "y" |= "z"`)
	f(`{a="b"} |> "<_> error <_>" or "<_> warn <_>" !> "<_> debug <_>"`, `{a="b"} |> "<_> error <_>" or "<_> warn <_>" !> "<_> debug <_>"`)
	f(`{a="b"} !> "<_> a <_>" or "<_> b"`, `{a="b"} !> "<_> a <_>" !> "<_> b"`)
	f(`{a="b"} |= ip("10.0.0.0/8") != ip("10.1.0.0/16") |= "x"`, `{a="b"} |= ip("10.0.0.0/8") != ip("10.1.0.0/16") |= "x"`)
	// Parsers with flags and expressions.
	f(`{a="b"} | logfmt --strict --keep-empty a, b="c"`, `{a="b"} | logfmt --strict --keep-empty a, b="c"`)
	f(`{a="b"} | logfmt --keep-empty`, `{a="b"} | logfmt --keep-empty`)
	f("{a=\"b\"} | regexp `(?P<method>\\w+) (?P<path>\\S+)`", `{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`)
	f(`{a="b"} | pattern "<ip> - <_> \"<method> <path>\""`, `{a="b"} | pattern "<ip> - <_> \"<method> <path>\""`)
	f(`{a="b"} | unpack | decolorize`, `{a="b"} | unpack | decolorize`)
	// Label stages.
	f(`{a="b"} | drop __error__, __error_details__`, `{a="b"} | drop __error__, __error_details__`)
	f(`{a="b"} | drop level, method="GET", path=~"/api.*"`, `{a="b"} | drop level, method="GET", path=~"/api.*"`)
	f(`{a="b"} | keep level, method!="GET"`, `{a="b"} | keep level, method!="GET"`)
	f(`{a="b"} | line_format "{{.status}} {{__line__ | lower}}"`, `{a="b"} | line_format "{{.status}} {{__line__ | lower}}"`)
	f(`{a="b"} | label_format lvl=level, msg="{{.level}}: {{__line__}}"`, `{a="b"} | label_format lvl=level, msg="{{.level}}: {{__line__}}"`)
	f(`{a="b"} | addr = ip("192.168.0.0/16") or addr != ip("10.0.0.1-10.0.0.9")`, `{a="b"} | addr = ip("192.168.0.0/16") or addr != ip("10.0.0.1-10.0.0.9")`)
	f(`{a="b"} | drop="x" | keep > 1`, `{a="b"} | drop="x" | keep > 1`)
	// Grafana's log volume query.
	f(`sum by (level, detected_level) (count_over_time({a="b"} | drop __error__ [1m]))`, `sum by (level, detected_level) (count_over_time({a="b"} | drop __error__ [1m]))`)
	// Range aggregations.
	f(`count_over_time({a="b"}[5m])`, `count_over_time({a="b"}[5m])`)
	f(`rate({a="b"} |= "x" | json | status >= 500 [1m])`, `rate({a="b"} |= "x" | json | status >= 500 [1m])`)
	f(`bytes_over_time({a="b"}[90m])`, `bytes_over_time({a="b"}[1h30m])`)
	f(`bytes_rate({a="b"}[1d])`, `bytes_rate({a="b"}[1d])`)
	f(`count_over_time(({a="b"} |= "x")[30s])`, `count_over_time({a="b"} |= "x" [30s])`)
	f(`rate({a="b"}[1500ms])`, `rate({a="b"}[1s500ms])`)
	// Vector aggregations.
	f(`sum(rate({a="b"}[1m]))`, `sum(rate({a="b"}[1m]))`)
	f(`sum by (a, b) (rate({a="b"}[1m]))`, `sum by (a, b) (rate({a="b"}[1m]))`)
	f(`sum(rate({a="b"}[1m])) by (a,b)`, `sum by (a, b) (rate({a="b"}[1m]))`)
	f(`avg without (host) (count_over_time({a="b"}[5m]))`, `avg without (host) (count_over_time({a="b"}[5m]))`)
	f(`min(count_over_time({a="b"}[5m])) without ()`, `min without () (count_over_time({a="b"}[5m]))`)
	f(`max by () (count_over_time({a="b"}[5m]))`, `max(count_over_time({a="b"}[5m]))`)
	f(`count(sum by (a) (rate({a="b"}[1m])))`, `count(sum by (a) (rate({a="b"}[1m])))`)
	f(`topk(5, sum by (path) (rate({a="b"}[1m])))`, `topk(5, sum by (path) (rate({a="b"}[1m])))`)
	f(`bottomk by (a) (3, rate({a="b"}[1m]))`, `bottomk by (a) (3, rate({a="b"}[1m]))`)
	f(`((sum((rate({a="b"}[1m])))))`, `sum(rate({a="b"}[1m]))`)
}

func TestParseExprTree(t *testing.T) {
	e, err := ParseExpr(`topk by (svc) (3, sum without (host) (rate({service="api"} |= "GET" | json | status >= 500 and duration > 1s [5m])))`)
	if err != nil {
		t.Fatal(err)
	}
	top, ok := e.(*VectorAggregationExpr)
	if !ok || top.Op != OpTopK || top.Param != 3 || top.Without || !reflect.DeepEqual(top.Grouping, []string{"svc"}) {
		t.Fatalf("got %#v; want topk by (svc) with k=3", e)
	}
	sum, ok := top.Inner.(*VectorAggregationExpr)
	if !ok || sum.Op != OpSum || !sum.Without || !reflect.DeepEqual(sum.Grouping, []string{"host"}) {
		t.Fatalf("got %#v; want sum without (host)", top.Inner)
	}
	r, ok := sum.Inner.(*RangeAggregationExpr)
	if !ok || r.Op != OpRate || r.Range != 5*time.Minute {
		t.Fatalf("got %#v; want rate over 5m", sum.Inner)
	}
	want := &LogSelectorExpr{
		Matchers: []*model.LabelMatcher{mustMatcher(t, "service", model.MatchEqual, "api")},
		Stages: []Stage{
			&LineFilterStage{Op: LineContains, Text: "GET"},
			&ParserStage{Kind: ParserJSON},
			&LabelFilterStage{Filter: &BinaryLabelFilter{
				And:   true,
				Left:  &NumberFilter{Name: "status", Op: CmpGte, Value: 500},
				Right: &DurationFilter{Name: "duration", Op: CmpGt, Value: time.Second},
			}},
		},
	}
	if !reflect.DeepEqual(r.Selector, want) {
		t.Fatalf("selector\ngot  %s\nwant %s", r.Selector, want)
	}
}

func mustMatcher(t *testing.T, name string, op model.MatchOp, value string) *model.LabelMatcher {
	t.Helper()
	m, err := model.NewLabelMatcher(name, op, value)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseLogSelector(t *testing.T) {
	e, err := ParseLogSelector(`{service="api"} |= "x"`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.String(), `{service="api"} |= "x"`; got != want {
		t.Fatalf("got %s; want %s", got, want)
	}
	f := func(q, wantErr string) {
		t.Helper()
		_, err := ParseLogSelector(q)
		if err == nil || err.Error() != wantErr {
			t.Fatalf("ParseLogSelector(%q): got error %v; want %s", q, err, wantErr)
		}
	}
	f(`rate({a="b"}[1m])`, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER, expecting {")
	f(`{a="b"} x`, "parse error at line 1, col 9: syntax error: unexpected IDENTIFIER, expecting pipeline stage or end of input")
}

// TestStringOfBuiltTrees checks printing of trees built by hand, which the
// parser never produces in this shape.
func TestStringOfBuiltTrees(t *testing.T) {
	a := &LabelMatchFilter{Matcher: mustMatcher(t, "a", model.MatchEqual, "1")}
	b := &LabelMatchFilter{Matcher: mustMatcher(t, "b", model.MatchEqual, "2")}
	c := &LabelMatchFilter{Matcher: mustMatcher(t, "c", model.MatchEqual, "3")}
	f := func(lf LabelFilter, want string) {
		t.Helper()
		if got := lf.String(); got != want {
			t.Fatalf("got %s; want %s", got, want)
		}
		e, err := ParseExpr(`{x="y"} | ` + want)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.(*LogSelectorExpr).Stages[0].(*LabelFilterStage).Filter; !reflect.DeepEqual(got, lf) {
			t.Fatalf("round trip of %s: got %s", want, got)
		}
	}
	f(&BinaryLabelFilter{And: true, Left: &BinaryLabelFilter{Left: a, Right: b}, Right: c}, `(a="1" or b="2") and c="3"`)
	f(&BinaryLabelFilter{Left: a, Right: &BinaryLabelFilter{Left: b, Right: c}}, `a="1" or (b="2" or c="3")`)
	f(&BinaryLabelFilter{Left: &BinaryLabelFilter{And: true, Left: a, Right: b}, Right: c}, `a="1" and b="2" or c="3"`)
	f(&BytesFilter{Name: "s", Op: CmpLt, Value: 1024000}, `s < 1024KB`)
	f(&BytesFilter{Name: "s", Op: CmpLt, Value: 1<<64 - 1}, `s < 18446744073709551615B`)
	f(&DurationFilter{Name: "d", Op: CmpGte, Value: -1500 * time.Millisecond}, `d >= -1.5s`)
	f(&NumberFilter{Name: "n", Op: CmpNe, Value: 1e-7}, `n != 1e-07`)
}

func TestFormatDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		got := formatDuration(d)
		if got != want {
			t.Fatalf("formatDuration(%v): got %s; want %s", d, got, want)
		}
		back, err := parseDuration(got)
		if err != nil || back != d {
			t.Fatalf("parseDuration(%s): got %v, %v; want %v", got, back, err, d)
		}
	}
	f(5*time.Minute, "5m")
	f(90*time.Minute, "1h30m")
	f(24*time.Hour, "1d")
	f(8*24*time.Hour+time.Second, "1w1d1s")
	f(366*24*time.Hour, "1y1d")
	f(1500*time.Millisecond, "1s500ms")
	f(1500*time.Microsecond, "1.5ms")
	f(0, "0s")
}

func TestParseDuration(t *testing.T) {
	f := func(s string, want time.Duration, wantErr bool) {
		t.Helper()
		got, err := parseDuration(s)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("parseDuration(%q): got %v, %v; want %v (error %v)", s, got, err, want, wantErr)
		}
		if std, stdErr := time.ParseDuration(s); stdErr == nil && (err != nil || std != got) {
			t.Fatalf("parseDuration(%q) = %v, %v; time.ParseDuration says %v", s, got, err, std)
		}
	}
	f("1h30m", 90*time.Minute, false)
	f("1.5s", 1500*time.Millisecond, false)
	f(".5s", 500*time.Millisecond, false)
	f("-2m", -2*time.Minute, false)
	f("1d12h", 36*time.Hour, false)
	f("2562047h47m16.854775807s", 1<<63-1, false)
	f("-2562047h47m16.854775808s", -1<<63, false)
	f("2562047h47m16.854775808s", 0, true)
	f("106752d", 0, true)
	f("0", 0, false)
	f("", 0, true)
	f("5", 0, true)
	f("5x", 0, true)
	f("s", 0, true)
	f(".s", 0, true)
}

func TestParseBytes(t *testing.T) {
	f := func(s string, want uint64, wantErr bool) {
		t.Helper()
		got, err := parseBytes(s)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("parseBytes(%q): got %d, %v; want %d (error %v)", s, got, err, want, wantErr)
		}
	}
	f("512", 512, false)
	f("10KB", 10000, false)
	f("10kb", 10000, false)
	f("1.5 MiB", 3<<19, false)
	f("2Gi", 2<<30, false)
	f("16EiB", 0, true)
	f("", 0, true)
	f("KB", 0, true)
	f("1.2.3B", 0, true)
	f("5 parsecs", 0, true)
	if got := strings.Repeat("9", 30); func() bool { _, err := parseBytes(got); return err == nil }() {
		t.Fatalf("parseBytes(%s): want an out-of-range error", got)
	}
}
