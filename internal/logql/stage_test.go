package logql

import (
	"strings"
	"testing"
	"time"
)

// entryCase runs the stages of q (after {service="api"}) on line from
// testStream at ts and compares the line and labels it returns, or
// "dropped". The expected values are worked out by hand from Loki's
// documentation, not by running Vigil.
func entryCase(t *testing.T) func(stages, line, wantLine, wantLabels string) {
	return func(stages, line, wantLine, wantLabels string) {
		t.Helper()
		p := mustPipeline(t, `{service="api"} `+stages)
		ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC).UnixNano()
		gotLine, ls, keep := p.ProcessEntry(ts, line, testStream)
		if !keep {
			if wantLabels != "dropped" {
				t.Fatalf("%s on %q: dropped; want %s", stages, line, wantLabels)
			}
			return
		}
		if !strings.Contains(wantLabels, ErrorDetailsLabel) {
			ls = withoutLabel(ls, ErrorDetailsLabel)
		}
		if got := ls.String(); got != wantLabels || gotLine != wantLine {
			t.Fatalf("%s on %q\ngot  %q %s\nwant %q %s", stages, line, gotLine, got, wantLine, wantLabels)
		}
	}
}

func TestStageDrop(t *testing.T) {
	f := entryCase(t)
	const js = `{"a":"1","b":"2"}`
	f(`| json | drop a`, js, js, `{b="2", level="info", service="api"}`)
	f(`| json | drop a, level`, js, js, `{b="2", service="api"}`)
	f(`| json | drop a="1", b="3"`, js, js, `{b="2", level="info", service="api"}`)
	f(`| json | drop a=~"\\d", b!="2"`, js, js, `{b="2", level="info", service="api"}`)
	f(`| drop missing`, "x", "x", kept)
	// Dropping the error labels clears the error: later filters on
	// __error__ see none, as Grafana's volume query relies on.
	f(`| json | drop __error__`, "not json", "not json", `{__error_details__="cannot parse JSON: unexpected value found: \"not json\"", level="info", service="api"}`)
	f(`| json | drop __error__, __error_details__`, "not json", "not json", kept)
	f(`| json | drop __error__ | __error__=""`, "not json", "not json", kept)
	f(`| json | drop __error__="LogfmtParserErr"`, "nope", "nope", `{__error__="JSONParserErr", level="info", service="api"}`)
	// A dropped label can be extracted again.
	f(`| json | drop a | json`, js, js, `{a="1", b="2", level="info", service="api"}`)
	// Label filters no longer see a dropped label.
	f(`| drop level | level="info"`, "x", "x", "dropped")
	f(`| drop level | level=""`, "x", "x", `{service="api"}`)
}

func TestStageKeep(t *testing.T) {
	f := entryCase(t)
	const js = `{"a":"1","b":"2"}`
	f(`| json | keep a`, js, js, `{a="1"}`)
	f(`| json | keep a, service`, js, js, `{a="1", service="api"}`)
	f(`| json | keep a="2", b="2"`, js, js, `{b="2"}`)
	f(`| keep level=~"i.*"`, "x", "x", `{level="info"}`)
	// keep never removes the error labels; only drop does.
	f(`| json | keep level`, "[1]", "[1]", `{__error__="JSONParserErr", __error_details__="expecting a JSON object, found array", level="info"}`)
}

func TestStageLineFormat(t *testing.T) {
	f := entryCase(t)
	const js = `{"status":"503","path":"/api","msg":"  Disk Full  "}`
	f(`| json | line_format "{{.status}} {{.path}}"`, js, "503 /api", `{level="info", msg="  Disk Full  ", path="/api", service="api", status="503"}`)
	f(`| line_format "{{.level}}: {{__line__}}"`, "hello", "info: hello", kept)
	f(`| line_format "{{.missing}}|"`, "hello", "|", kept)
	f(`| line_format "{{__timestamp__ | date \"2006-01-02T15:04:05Z\"}}"`, "x", "2024-05-06T07:08:09Z", kept)
	f(`| line_format "{{__timestamp__ | unixEpoch}}"`, "x", "1714979289", kept)
	f(`| json | line_format "{{.msg | trim | lower}}"`, js, "disk full", `{level="info", msg="  Disk Full  ", path="/api", service="api", status="503"}`)
	f(`| line_format "{{ToUpper .level}} {{.service | upper}} {{title \"hello world\"}}"`, "x", "INFO API Hello World", kept)
	f(`| line_format "{{replace \"a\" \"o\" __line__}}"`, "banana", "bonono", kept)
	f(`| line_format "{{Replace __line__ \"a\" \"o\" 1}}"`, "banana", "bonana", kept)
	f(`| line_format "{{regexReplaceAll \"(\\\\d+)ms\" __line__ \"${1} milliseconds\"}}"`, "took 250ms", "took 250 milliseconds", kept)
	f(`| line_format "{{.missing | default \"none\"}} {{.level | default \"none\"}}"`, "x", "none info", kept)
	f(`| line_format "{{printf \"%05d|%s\" 42 .level}}"`, "x", "00042|info", kept)
	f(`| line_format "{{substr 0 3 __line__}}{{trunc 2 __line__}}"`, "abcdef", "abcab", kept)
	f(`| line_format "{{if contains \"err\" __line__}}E{{end}}{{if hasPrefix \"ab\" __line__}}P{{end}}{{if hasSuffix \"z\" __line__}}S{{end}}"`, "abc err", "EP", kept)
	f(`| line_format "{{indent 2 __line__}}"`, "a\nb", "  a\n  b", kept)
	f(`| line_format "{{TrimPrefix __line__ \"x-\"}}/{{trimSuffix \"-z\" __line__}}"`, "x-y-z", "y-z/x-y", kept)
	f(`| line_format "{{(fromJson __line__).a}}"`, `{"a":"b"}`, "b", kept)
	f(`| line_format "{{add 1 .n}}"`, "x", "1", kept)
	// A template that fails keeps the line and sets the error.
	f(`| line_format "{{div 1 0}}"`, "x", "x", `{__error__="TemplateFormatErr", level="info", service="api"}`)
	// Output is bounded.
	f(`| line_format "{{range 100000000}}xxxxxxxxxx{{end}}"`, "x", "x", `{__error__="TemplateFormatErr", level="info", service="api"}`)
	f(`| line_format "{{repeat 100000000 __line__}}"`, "xx", "xx", `{__error__="TemplateFormatErr", level="info", service="api"}`)
	// Later stages see the new line.
	f(`| line_format "{{.level}}" |= "info"`, "x", "info", kept)
	f(`| line_format "{{.level}}" |= "x"`, "x", "", "dropped")
}

func TestStageLabelFormat(t *testing.T) {
	f := entryCase(t)
	f(`| label_format lvl=level`, "x", "x", `{lvl="info", service="api"}`)
	f(`| label_format svc="{{.service}}-{{.level}}"`, "x", "x", `{level="info", service="api", svc="api-info"}`)
	f(`| label_format level="{{.level | upper}}"`, "x", "x", `{level="INFO", service="api"}`)
	f(`| label_format line="{{__line__}}", lvl=level`, "hello", "hello", `{line="hello", lvl="info", service="api"}`)
	f(`| label_format x=missing`, "x", "x", kept)
	f(`| label_format lvl=level | level="info"`, "x", "x", "dropped")
	f(`| logfmt | label_format dur_ms="{{duration .dur | mulf 1000}}"`, "dur=1.5s", "dur=1.5s", `{dur="1.5s", dur_ms="1500", level="info", service="api"}`)
}

func TestStageDecolorize(t *testing.T) {
	f := entryCase(t)
	f(`| decolorize`, "\x1b[31mERROR\x1b[0m disk \x1b[1;32mfull\x1b[0m", "ERROR disk full", kept)
	f(`| decolorize`, "plain", "plain", kept)
	f(`| decolorize |= "ERROR disk"`, "\x1b[31mERROR\x1b[0m disk", "ERROR disk", kept)
}

func TestStageRegexp(t *testing.T) {
	f := entryCase(t)
	const line = `GET /api/users 200 12ms`
	f(`| regexp "(?P<method>\\w+) (?P<path>\\S+) (?P<status>\\d+)"`, line, line, `{level="info", method="GET", path="/api/users", service="api", status="200"}`)
	f(`| regexp "(?P<level>\\w+) "`, line, line, `{level="info", level_extracted="GET", service="api"}`)
	f(`| regexp "(?P<a>x)|(?P<b>G)"`, line, line, `{a="", b="G", level="info", service="api"}`)
	// No match: the line is kept without new labels and without an error.
	f(`| regexp "(?P<code>5\\d\\d)"`, line, line, kept)
	f(`| regexp "(?P<code>\\d{3})" | code >= 200`, line, line, `{code="200", level="info", service="api"}`)
}

func TestStagePattern(t *testing.T) {
	f := entryCase(t)
	const access = `192.168.1.7 - - [06/May/2024:07:08:09 +0000] "GET /api HTTP/1.1" 503 1024`
	f(`| pattern "<ip> - <_> [<ts>] \"<method> <path> <_>\" <status> <size>"`, access, access,
		`{ip="192.168.1.7", level="info", method="GET", path="/api", service="api", size="1024", status="503", ts="06/May/2024:07:08:09 +0000"}`)
	// A leading literal must start the line.
	f(`| pattern "ts=<ts> <_>"`, "level=x ts=1 y", "level=x ts=1 y", kept)
	f(`| pattern "ts=<ts> <_>"`, "ts=1 y", "ts=1 y", `{level="info", service="api", ts="1"}`)
	// A missing literal ends matching; the capture runs to the end.
	f(`| pattern "<a> | <b> | <c>"`, "x | y", "x | y", `{a="x", b="y", level="info", service="api"}`)
	f(`| pattern "<level> <msg>"`, "warn disk full", "warn disk full", `{level="info", level_extracted="warn", msg="disk full", service="api"}`)
	f(`| pattern "<a> x"`, "", "", kept)
}

func TestStageUnpack(t *testing.T) {
	f := entryCase(t)
	f(`| unpack`, `{"container":"web","pod":"p-1","n":3,"_entry":"original \"line\""}`, `original "line"`,
		`{container="web", level="info", pod="p-1", service="api"}`)
	f(`| unpack`, `{"level":"warn","_entry":"x"}`, "x", `{level="info", level_extracted="warn", service="api"}`)
	f(`| unpack`, `{"container":"web"}`, `{"container":"web"}`, kept)
	f(`| unpack`, `not json`, `not json`, `{__error__="JSONParserErr", level="info", service="api"}`)
	f(`| unpack | json`, `{"_entry":"{\"a\":\"1\"}"}`, `{"a":"1"}`, `{a="1", level="info", service="api"}`)
}

func TestStageLineFilterOr(t *testing.T) {
	f := entryCase(t)
	f(`|= "error" or "warn"`, "a warn", "a warn", kept)
	f(`|= "error" or "warn"`, "an error", "an error", kept)
	f(`|= "error" or "warn"`, "info", "info", "dropped")
	f(`|~ "err.r" or "wa.n" or "fatal"`, "fatal!", "fatal!", kept)
	// != "a" or "b" keeps lines with neither, as in Loki.
	f(`!= "error" or "warn"`, "info", "info", kept)
	f(`!= "error" or "warn"`, "a warn", "a warn", "dropped")
	f(`!~ "e.r" or "w.n"`, "error", "error", "dropped")
	f(`|= "a" or "b" |= "c"`, "b c", "b c", kept)
	f(`|= "a" or "b" |= "c"`, "a b", "a b", "dropped")
}

func TestStagePatternLineFilter(t *testing.T) {
	f := entryCase(t)
	f(`|> "<_> error <_>"`, "an error here", "an error here", kept)
	f(`|> "<_> error <_>"`, "error here", "error here", "dropped")
	// A pattern ending in a literal must end the line; one ending in <_>
	// must leave text for it.
	f(`|> "<_> bar"`, "foo bar", "foo bar", kept)
	f(`|> "<_> bar"`, "foo bar baz", "foo bar baz", "dropped")
	f(`|> "foo <_>"`, "foo bar", "foo bar", kept)
	f(`|> "foo <_>"`, "foo ", "foo ", "dropped")
	f(`|> "<_> GET <_> 5<_>"`, "1.2.3.4 GET /x 503", "1.2.3.4 GET /x 503", kept)
	f(`|> "<_> GET <_> 5<_>"`, "1.2.3.4 GET /x 200", "1.2.3.4 GET /x 200", "dropped")
	f(`!> "<_> error <_>"`, "an error here", "an error here", "dropped")
	f(`!> "<_> error <_>"`, "all fine", "all fine", kept)
	f(`|> "<_> a <_>" or "<_> b <_>"`, "x b y", "x b y", kept)
	f(`|> "<_> a <_>" or "<_> b <_>"`, "x c y", "x c y", "dropped")
	f(`!> "<_> a <_>" or "<_> b <_>"`, "x b y", "x b y", "dropped")
}

func TestStageIPFilter(t *testing.T) {
	f := entryCase(t)
	f(`| logfmt | addr = ip("192.168.0.0/16")`, "addr=192.168.4.5", "addr=192.168.4.5", `{addr="192.168.4.5", level="info", service="api"}`)
	f(`| logfmt | addr = ip("192.168.0.0/16")`, "addr=10.0.0.1", "addr=10.0.0.1", "dropped")
	f(`| logfmt | addr != ip("192.168.0.0/16")`, "addr=10.0.0.1", "addr=10.0.0.1", `{addr="10.0.0.1", level="info", service="api"}`)
	f(`| logfmt | addr = ip("10.0.0.1-10.0.0.9")`, "addr=10.0.0.9", "addr=10.0.0.9", `{addr="10.0.0.9", level="info", service="api"}`)
	f(`| logfmt | addr = ip("10.0.0.1-10.0.0.9")`, "addr=10.0.0.10", "addr=10.0.0.10", "dropped")
	f(`| logfmt | addr = ip("::1")`, "addr=::1", "addr=::1", `{addr="::1", level="info", service="api"}`)
	f(`| logfmt | addr = ip("2001:db8::/32")`, "addr=2001:db8::7", "addr=2001:db8::7", `{addr="2001:db8::7", level="info", service="api"}`)
	f(`| logfmt | addr = ip("10.0.0.1")`, "x=1", "x=1", "dropped")
	f(`| logfmt | addr = ip("10.0.0.1") or x="1"`, "x=1", "x=1", `{level="info", service="api", x="1"}`)
	// The address may be part of the value, as Loki finds it.
	f(`| logfmt | addr = ip("10.0.0.0/8")`, "addr=10.0.0.1:8080", "addr=10.0.0.1:8080", `{addr="10.0.0.1:8080", level="info", service="api"}`)
	f(`| logfmt | addr = ip("10.0.0.0/8")`, "addr=host-a", "addr=host-a", "dropped")
	// Line filters.
	f(`|= ip("192.168.0.0/16")`, "from 192.168.4.5:443 ok", "from 192.168.4.5:443 ok", kept)
	f(`|= ip("192.168.0.0/16")`, "from 10.1.1.1 ok", "from 10.1.1.1 ok", "dropped")
	f(`|= ip("2001:db8::/32")`, "peer [2001:db8::7]:443", "peer [2001:db8::7]:443", kept)
	f(`!= ip("192.168.0.0/16")`, "from 10.1.1.1 ok", "from 10.1.1.1 ok", kept)
	f(`!= ip("192.168.0.0/16")`, "to 192.168.0.1", "to 192.168.0.1", "dropped")
	f(`|= ip("10.0.0.1")`, "version 10.0.0.12", "version 10.0.0.12", "dropped")
	f(`| logfmt | addr = ip("10.0.0.1"), x="1"`, "x=1 addr=10.0.0.1", "x=1 addr=10.0.0.1", `{addr="10.0.0.1", level="info", service="api", x="1"}`)
}

func TestStageParserErrors(t *testing.T) {
	f := entryCase(t)
	f(`| json`, `{"a":1`, `{"a":1`, `{__error__="JSONParserErr", __error_details__="cannot parse JSON: cannot parse object: unexpected end of object", level="info", service="api"}`)
	f(`| json`, `[1]`, `[1]`, `{__error__="JSONParserErr", __error_details__="expecting a JSON object, found array", level="info", service="api"}`)
	f(`| logfmt --strict`, `a="x`, `a="x`, `{__error__="LogfmtParserErr", __error_details__="logfmt syntax error at byte offset 2: unterminated quoted value", level="info", service="api"}`)
	f(`| json | __error__="" | drop __error_details__`, "x", "x", "dropped")
	// The error labels only stay while no later stage drops them.
	f(`| json | drop __error__, __error_details__ | logfmt`, "a=b", "a=b", `{a="b", level="info", service="api"}`)
}
