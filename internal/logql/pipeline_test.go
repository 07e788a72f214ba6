package logql

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

var testStream = model.Labels{{Name: "level", Value: "info"}, {Name: "service", Value: "api"}}

func mustPipeline(t testing.TB, q string) *Pipeline {
	t.Helper()
	e, err := ParseLogSelector(q)
	if err != nil {
		t.Fatalf("ParseLogSelector(%q): %s", q, err)
	}
	p, err := e.Pipeline()
	if err != nil {
		t.Fatalf("Pipeline(%q): %s", q, err)
	}
	return p
}

// pipelineCase runs the stages of q (after the stream selector
// {service="api"}) on line from testStream and compares the labels it
// returns, or "dropped".
func pipelineCase(t *testing.T) func(stages, line, want string) {
	return func(stages, line, want string) {
		t.Helper()
		p := mustPipeline(t, `{service="api"} `+stages)
		ls, keep := p.Process(line, testStream)
		got := "dropped"
		if keep {
			if !strings.Contains(want, ErrorDetailsLabel) {
				ls = withoutLabel(ls, ErrorDetailsLabel)
			}
			got = ls.String()
		}
		if got != want {
			t.Fatalf("%s on %q\ngot  %s\nwant %s", stages, line, got, want)
		}
	}
}

// withoutLabel returns ls without the label name, for cases that do not
// check the parsers' error details.
func withoutLabel(ls model.Labels, name string) model.Labels {
	var out model.Labels
	for _, l := range ls {
		if l.Name != name {
			out = append(out, l)
		}
	}
	return out
}

const kept = `{level="info", service="api"}`

func TestPipelineLineFilters(t *testing.T) {
	f := pipelineCase(t)
	f(``, "anything", kept)
	f(`|= "error"`, "an error occurred", kept)
	f(`|= "error"`, "an ERROR occurred", "dropped")
	f(`!= "error"`, "an error occurred", "dropped")
	f(`!= "error"`, "all good", kept)
	f(`|= "a" |= "b"`, "a b", kept)
	f(`|= "a" |= "b"`, "a", "dropped")
	f(`|= ""`, "x", kept)
	f(`|~ "err(or)?"`, "an err", kept)
	f(`|~ "^an"`, "an err", kept)
	f(`|~ "^err"`, "an err", "dropped")
	f(`!~ "err"`, "an err", "dropped")
	f(`|~ "(?i)error"`, "an ErRoR", kept)
	f(`|~ "(?i)error"`, "an erro", "dropped")
	f(`!~ "(?i)error"`, "ERROR", "dropped")
	f(`|~ "(?i)status"`, "\u017ftatus", kept)        // long s (ſ) folds to s
	f(`|~ "(?i)kelvin"`, "\u212aelvin", kept)        // Kelvin sign (K) folds to k
	f(`|~ "(?i)status=5\\d\\d"`, "STATUS=503", kept) // not a literal: regexp engine
	f(`|~ "a.c"`, "abc", kept)
	f(`|~ "a\\.c"`, "abc", "dropped")
}

func TestPipelineJSON(t *testing.T) {
	f := pipelineCase(t)
	f(`| json`, `{"a":{"b":1}}`, `{a_b="1", level="info", service="api"}`)
	f(`| json`, `{"msg":"hi","n":1.50,"e":1e3,"t":true,"f":false,"z":null,"arr":[1,2],"o":{}}`,
		`{e="1e3", f="false", level="info", msg="hi", n="1.50", service="api", t="true"}`)
	f(`| json`, `{"a":{"b":{"c":"deep"},"d":2}}`, `{a_b_c="deep", a_d="2", level="info", service="api"}`)
	f(`| json`, `{"a-b.c":1,"ü":2,"1x":3," sp ":4,"x":{"1":5,"y-z":6}}`,
		`{_="2", _1x="3", a_b_c="1", level="info", service="api", sp="4", x_1="5", x_y_z="6"}`)
	f(`| json`, `{"level":"error","msg":"x"}`, `{level="info", level_extracted="error", msg="x", service="api"}`)
	f(`| json`, `{"service":{"name":"db"}}`, `{level="info", service="api", service_name="db"}`)
	f(`| json`, `{"msg":"say \"hi\"\n\u00e9"}`, `{level="info", msg="say \"hi\"\né", service="api"}`)
	f(`| json`, "{\"bad\":\"\xff\",\"rep\":\"\\ufffd\",\"ok\":\"é\"}", `{bad="", level="info", ok="é", rep="", service="api"}`)
	// fastjson keeps a lone surrogate escape as written (Loki drops the value).
	f(`| json`, `{"s":"\ud800"}`, `{level="info", s="\\ud800", service="api"}`)
	f(`| json`, `{"a":1,"a":2}`, `{a="2", level="info", service="api"}`)
	f(`| json`, `{"a_b":1,"a":{"b":2}}`, `{a_b="2", level="info", service="api"}`)
	f(`| json`, `{}`, kept)
	// Lines that are not JSON objects are kept with an error label.
	f(`| json`, `not json`, `{__error__="JSONParserErr", level="info", service="api"}`)
	f(`| json`, `{"a":1`, `{__error__="JSONParserErr", level="info", service="api"}`)
	f(`| json`, `[1,2]`, `{__error__="JSONParserErr", level="info", service="api"}`)
	f(`| json`, `"str"`, `{__error__="JSONParserErr", level="info", service="api"}`)
	f(`| json | __error__=""`, `not json`, "dropped")
	f(`| json | __error__=""`, `{"a":"1"}`, `{a="1", level="info", service="api"}`)
	f(`| json | __error__!=""`, `{"a":"1"}`, "dropped")
	// Extractions by path.
	f(`| json first="servers[0]", ua="req.headers[\"User-Agent\"]", missing="x.y", obj="req", arr="servers", level`,
		`{"servers":["s1","s2"],"req":{"headers":{"User-Agent":"curl"}},"level":"warn"}`,
		`{arr="[\"s1\",\"s2\"]", first="s1", level="info", level_extracted="warn", missing="", obj="{\"headers\":{\"User-Agent\":\"curl\"}}", service="api", ua="curl"}`)
	f(`| json n="a.b"`, `{"a":{"b":null}}`, `{level="info", n="", service="api"}`)
	f(`| json n="a.b"`, `{"a":{"b":2.5}}`, `{level="info", n="2.5", service="api"}`)
	f(`| json n="a"`, `nope`, `{__error__="JSONParserErr", level="info", service="api"}`)
	// Two json stages keep the first stage's values intact.
	f(`| json | json x="a"`, `{"a":"1","b":"2"}`, `{a="1", b="2", level="info", service="api", x="1"}`)
}

func TestPipelineLogfmt(t *testing.T) {
	f := pipelineCase(t)
	f(`| logfmt`, `level=error msg="hello world" dur=1.2s flag`,
		`{dur="1.2s", level="info", level_extracted="error", msg="hello world", service="api"}`)
	f(`| logfmt --keep-empty`, `level=error msg="hello world" dur=1.2s flag`,
		`{dur="1.2s", flag="", level="info", level_extracted="error", msg="hello world", service="api"}`)
	f(`| logfmt`, `a.b=1 c-d=2 1x=3 ü=4`, `{_="4", _1x="3", a_b="1", c_d="2", level="info", service="api"}`)
	// Without --strict a malformed pair is skipped; with it parsing stops
	// there and the line gets the error.
	f(`| logfmt`, `a=1 b="unterminated`, `{a="1", level="info", service="api"}`)
	f(`| logfmt`, `a=1 "b"=2 c=3`, `{a="1", c="3", level="info", service="api"}`)
	f(`| logfmt --strict`, `a=1 "b"=2 c=3`, `{__error__="LogfmtParserErr", a="1", level="info", service="api"}`)
	f(`| logfmt --strict`, `a=1 b="unterminated`, `{__error__="LogfmtParserErr", a="1", level="info", service="api"}`)
	f(`| logfmt --strict | __error__=""`, `a=1 b="unterminated`, "dropped")
	f(`| logfmt | __error__=""`, `a=1 b="unterminated`, `{a="1", level="info", service="api"}`)
	f(`| logfmt`, "a=\xff", `{a="", level="info", service="api"}`)
	f(`| logfmt`, `a=1 a=2`, `{a="2", level="info", service="api"}`)
	f(`| logfmt lvl="level", msg, missing`, `level=warn msg=hi other=x`, `{level="info", lvl="warn", missing="", msg="hi", service="api"}`)
	f(`| logfmt level`, `level=warn`, `{level="info", level_extracted="warn", service="api"}`)
	f(`| logfmt | json`, `a=1`, `{__error__="JSONParserErr", a="1", level="info", service="api"}`)
}

func TestPipelineLabelFilters(t *testing.T) {
	f := pipelineCase(t)
	const line = `{"level":"error","status":503,"latency":"250.5","duration":"1.5s","size":"10KB","path":"/api/v1","msg":"x"}`
	const all = `{duration="1.5s", latency="250.5", level="info", level_extracted="error", msg="x", path="/api/v1", service="api", size="10KB", status="503"}`
	f(`| json | level_extracted="error"`, line, all)
	f(`| json | level_extracted="info"`, line, "dropped")
	f(`| json | level="info"`, line, all) // the stream label
	f(`| json | path=~"/api/.*"`, line, all)
	f(`| json | path=~"api"`, line, "dropped") // anchored
	f(`| json | path!~"/api/.*"`, line, "dropped")
	f(`| json | nope=""`, line, all)
	f(`| json | nope!="x"`, line, all)
	// Numbers.
	f(`| json | status >= 500`, line, all)
	f(`| json | status > 503`, line, "dropped")
	f(`| json | status == 503`, line, all)
	f(`| json | status = 503`, line, all)
	f(`| json | status != 503`, line, "dropped")
	f(`| json | status < 503.5`, line, all)
	f(`| json | status <= 502`, line, "dropped")
	f(`| json | latency > 250.25`, line, all)
	f(`| json | latency > 250.5`, line, "dropped")
	// A value that does not convert keeps the line with an error, as in Loki.
	filterErr := `{__error__="LabelFilterErr", ` + all[1:]
	f(`| json | msg > 1`, line, filterErr)
	f(`| json | msg > 1 | __error__=""`, line, "dropped")
	f(`| json | msg > 1 or status == 1`, line, filterErr)
	f(`| json | status == 1 and msg > 1`, line, "dropped")
	f(`| json | nope < 1`, line, "dropped") // absent
	f(`| json | nope != 1`, line, "dropped")
	// Durations and byte sizes.
	f(`| json | duration > 1s`, line, all)
	f(`| json | duration >= 1500ms`, line, all)
	f(`| json | duration > 2s`, line, "dropped")
	f(`| json | msg > 1s`, line, filterErr)
	f(`| json | msg > 1KB`, line, filterErr)
	// The first error stays, a label filter's or a parser's.
	f(`| json | msg > 1 | msg > 1s`, line, filterErr)
	f(`| logfmt --strict | a > 1`, `a=x b="`, `{__error__="LogfmtParserErr", a="x", level="info", service="api"}`)
	f("| logfmt | a > 1", "a=x b", `{__error__="LabelFilterErr", __error_details__="strconv.ParseFloat: parsing \"x\": invalid syntax", a="x", level="info", service="api"}`)
	f(`| json | size >= 10KB`, line, all)
	f(`| json | size > 9.9KiB`, line, "dropped")
	f(`| json | size == 10000B`, line, all)

	// Combinations.
	f(`| json | status >= 500 and duration > 1s`, line, all)
	f(`| json | status >= 500, duration > 2s`, line, "dropped")
	f(`| json | status >= 500 duration > 2s`, line, "dropped")
	f(`| json | status < 500 or duration > 1s`, line, all)
	f(`| json | status < 500 or duration > 2s`, line, "dropped")
	f(`| json | (status < 500 or duration > 1s) and msg="y"`, line, "dropped")
	f(`| json | status < 500 or duration > 1s and msg="x"`, line, all)
	f(`| json | level_extracted="error" |= "v1" != "v2" |~ "\"status\":5\\d\\d"`, line, all)
	f(`| json | level_extracted="error" |= "v3"`, line, "dropped")
}

func TestPipelineResultOwnership(t *testing.T) {
	p := mustPipeline(t, `{service="api"} | json`)
	first, _ := p.Process(`{"a":"one","n":1}`, testStream)
	want := first.String()
	for i := range 100 {
		p.Process(fmt.Sprintf(`{"a":"xxx%d","n":%d}`, i, i), testStream)
	}
	if got := first.String(); got != want {
		t.Fatalf("labels changed after later lines: got %s; want %s", got, want)
	}
	// Without extracted labels, the stream labels come back as they are.
	lp := mustPipeline(t, `{service="api"} |= "x" | json a="b" | a=""`)
	if ls, _ := lp.Process("x", testStream); len(ls) != 4 || ls.Get("__error__") != "JSONParserErr" || ls.Get("__error_details__") == "" {
		t.Fatalf("got %s; want stream labels plus __error__ and __error_details__", ls)
	}
	fp := mustPipeline(t, `{service="api"} |= "x"`)
	if ls, keep := fp.Process("x", testStream); !keep || &ls[0] != &testStream[0] {
		t.Fatalf("got %s, %v; want the stream labels themselves", ls, keep)
	}
}

func TestPipelineConcurrent(t *testing.T) {
	p := mustPipeline(t, `{service="api"} | json | logfmt | n >= 0`)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				n := g*10000 + i
				ls, keep := p.Process(fmt.Sprintf(`{"n":%d,"s":"v%d"}`, n, n), testStream)
				if !keep || ls.Get("n") != fmt.Sprint(n) || ls.Get("s") != fmt.Sprint("v", n) {
					errs <- fmt.Errorf("line %d: got %s, %v", n, ls, keep)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestPipelineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	f := func(q, line string, want float64) {
		t.Helper()
		p := mustPipeline(t, q)
		p.Process(line, testStream) // warm the pool
		if got := testing.AllocsPerRun(200, func() { p.Process(line, testStream) }); got > want {
			t.Fatalf("%s on %q: got %v allocs per line; want at most %v", q, line, got, want)
		}
	}
	f(`{service="api"} |= "GET" != "health" |~ "(?i)error" !~ "status=[45]\\d\\d"`, `GET /x status=200 error`, 0)
	f(`{service="api"} | json | level="error"`, `{"level":"info","msg":"hello \"world\"","n":5,"o":{"p":1}}`, 0)
	f(`{service="api"} | logfmt | level="error"`, `level=info msg="hello world" n=5`, 0)
	// A kept line costs the label slice and one block for the strings.
	f(`{service="api"} | json | level_extracted="info"`, `{"level":"info","msg":"hello","n":5}`, 2)
}

func TestPipelineBadStages(t *testing.T) {
	f := func(e *LogSelectorExpr, want string) {
		t.Helper()
		_, err := e.Pipeline()
		if err == nil || err.Error() != want {
			t.Fatalf("got error %v; want %s", err, want)
		}
	}
	f(&LogSelectorExpr{Stages: []Stage{&LineFilterStage{Op: LineMatch, Text: "("}}},
		"cannot compile line filter |~ \"(\": error parsing regexp: missing closing ): `(`")
	f(&LogSelectorExpr{Stages: []Stage{&ParserStage{Kind: ParserJSON, Extractions: []LabelExtraction{{Label: "a", Expr: ""}}}}},
		"cannot compile parser | json a=\"\": empty path")
	f(&LogSelectorExpr{Stages: []Stage{&ParserStage{Kind: "xml"}}}, "cannot compile parser | xml: unknown parser xml")
	f(&LogSelectorExpr{Stages: []Stage{&LabelFilterStage{}}}, "cannot compile label filter: no filter")
}

func TestRequiredSubstrings(t *testing.T) {
	f := func(q string, want ...string) {
		t.Helper()
		e, err := ParseLogSelector(q)
		if err != nil {
			t.Fatal(err)
		}
		got := e.RequiredSubstrings()
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("RequiredSubstrings(%s): got %q; want %q", q, got, want)
		}
	}
	f(`{a="b"}`)
	f(`{a="b"} |= "x"`, "x")
	f(`{a="b"} |= "x" != "y" |~ "z" |= "w" |= "x" |= ""`, "x", "z", "w") // a literal regexp is a substring
	f(`{a="b"} |~ "z.*" |~ "(?i)Warn"`)
	f(`{a="b"} |= "x" | json |= "y"`, "x")
	f(`{a="b"} |= "x" | level="error" |= "y"`, "x")
	f(`{a="b"} !~ "x" | logfmt`)
	f(`{a="b"} |= "x" or "y" |= "z"`, "z") // either x or y: neither is required
	f(`{a="b"} != "x" or "y" |= "z"`, "z")
	f(`{a="b"} |= "x" | line_format "{{.a}}" |= "y"`, "x")
	f(`{a="b"} |= "x" | decolorize |= "y"`, "x")
	alt := func(q string, want string) {
		t.Helper()
		e, err := ParseLogSelector(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%q", e.RequiredAlternatives()); got != want {
			t.Fatalf("RequiredAlternatives(%s): got %s; want %s", q, got, want)
		}
	}
	alt(`{a="b"} |= "x"`, `[]`)
	alt(`{a="b"} |= "x" or "y" != "z" |~ "w" or "v" or "u"`, `[["x" "y"] ["w" "v" "u"]]`)
	alt(`{a="b"} |~ "x" or "y.*"`, `[]`)      // not literals
	alt(`{a="b"} |~ "x" or "(?i)y"`, `[]`)    // not case-sensitive
	alt(`{a="b"} |= "x" or ""`, `[]`)         // every line contains ""
	alt(`{a="b"} != "x" or "y"`, `[]`)        // neither: two != filters
	alt(`{a="b"} | json |= "x" or "y"`, `[]`) // after a parser
	alt(`{a="b"} | decolorize |= "x" or "y"`, `[]`)
	f(`{a="b"} |= ip("10.0.0.1") |= "x"`, "x")
	fold := func(q string, want ...string) {
		t.Helper()
		e, err := ParseLogSelector(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.RequiredFoldSubstrings(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("RequiredFoldSubstrings(%s): got %q; want %q", q, got, want)
		}
	}
	fold(`{a="b"} |~ "(?i)Warn" |= "x" |~ "(?i)warn"`, "warn")
	fold(`{a="b"} |~ "(?i)wa.n"`)
	fold(`{a="b"} | json |~ "(?i)warn"`)
}

func TestLiteralRegexp(t *testing.T) {
	f := func(expr, wantLit string, wantFold, wantOK bool) {
		t.Helper()
		lit, fold, ok := literalRegexp(expr)
		if lit != wantLit || fold != wantFold || ok != wantOK {
			t.Fatalf("literalRegexp(%q): got %q, %v, %v; want %q, %v, %v", expr, lit, fold, ok, wantLit, wantFold, wantOK)
		}
	}
	f("error", "error", false, true)
	f(`a\.c`, "a.c", false, true)
	f("(?i)Timed Out", "timed out", true, true)
	f("(?i)kelvin", "", false, false)
	f("(?i)status", "", false, false)
	f("a.c", "", false, false)
	f("^error", "", false, false)
	f("err|fail", "", false, false)
	f("(?i)é", "", false, false)
}
