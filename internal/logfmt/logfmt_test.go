package logfmt

import (
	"errors"
	"strings"
	"testing"
)

type pair struct{ key, value string }

func collect(line string) ([]pair, error) {
	var got []pair
	err := Parse(line, func(k, v string) { got = append(got, pair{k, v}) })
	return got, err
}

func formatPairs(ps []pair) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.key + "=<" + p.value + ">")
	}
	return b.String()
}

func TestParse(t *testing.T) {
	f := func(line, want string) {
		t.Helper()
		got, err := collect(line)
		if err != nil {
			t.Fatalf("Parse(%q): unexpected error: %s", line, err)
		}
		if s := formatPairs(got); s != want {
			t.Fatalf("Parse(%q)\ngot  %s\nwant %s", line, s, want)
		}
	}
	f("", "")
	f("   \t ", "")
	f("a=1", "a=<1>")
	f(`level=info msg="hello world" dur=1.2s flag`, "level=<info> msg=<hello world> dur=<1.2s> flag=<>")
	f("flag", "flag=<>")
	f("a= b=2", "a=<> b=<2>")
	f("a=", "a=<>")
	f(`a=""`, "a=<>")
	f(`msg="say \"hi\"" path="C:\\dir" nl="x\ny"`, `msg=<say "hi"> path=<C:\dir> nl=<x`+"\n"+`y>`)
	f(`u="\u00e9\x41\t"`, "u=<éA\t>")
	f(`raw="\xff"`, "raw=<\xff>")
	f("url=http://x/?a=b&c=d", "url=<http://x/?a=b&c=d>")
	f(`odd=a"b`, `odd=<a"b>`)
	f("  a=1\t\tb=2  \r\n", "a=<1> b=<2>")
	f("k.e-y_1=v", "k.e-y_1=<v>")
	f("ключ=значение", "ключ=<значение>")
	f(`a="日本 語"`, "a=<日本 語>")
	f("dup=1 dup=2", "dup=<1> dup=<2>")
}

func TestParseErrors(t *testing.T) {
	f := func(line string, wantOffset int, wantPairs string) {
		t.Helper()
		got, err := collect(line)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Parse(%q): got error %v; want *SyntaxError", line, err)
		}
		if se.Offset != wantOffset {
			t.Fatalf("Parse(%q): got offset %d (%s); want %d", line, se.Offset, se, wantOffset)
		}
		if s := formatPairs(got); s != wantPairs {
			t.Fatalf("Parse(%q): pairs before the error\ngot  %s\nwant %s", line, s, wantPairs)
		}
		if !strings.Contains(err.Error(), "byte offset") {
			t.Fatalf("Parse(%q): error %q does not name the byte offset", line, err)
		}
	}
	f(`a=1 msg="unterminated`, 8, "a=<1>")
	f(`a=1 b=2 msg="x\"`, 12, "a=<1> b=<2>")
	f(`=value`, 0, "")
	f(`a=1 ="x"`, 4, "a=<1>")
	f(`a=1 "quoted"=x`, 4, "a=<1>")
	f(`ke"y=1`, 2, "")
	f(`a="x"b c=1`, 5, "")
	f(`a=1 b="bad \q escape"`, 11, "a=<1>")
	f(`a="\`, 3, "")
}

func TestIsLogfmt(t *testing.T) {
	f := func(line string, want bool) {
		t.Helper()
		if got := IsLogfmt(line); got != want {
			t.Fatalf("IsLogfmt(%q): got %v; want %v", line, got, want)
		}
	}
	f(`level=info msg="hello world" dur=1.2s flag`, true)
	f("a=1", true)
	f("service.name=api http-status=200", true)
	f("key=", true)
	f(`msg="has \"escapes\""`, true)
	f("", false)
	f("just some words", false)
	f(`{"level":"info","msg":"x"}`, false)
	f("hello, world a=b", false)
	f(`a="unterminated`, false)
	f("ключ=значение", false)
	f("=5", false)
}

func TestIsLogfmtAllocs(t *testing.T) {
	line := `level=info msg="escaped \"value\"" dur=1.2s flag`
	if n := testing.AllocsPerRun(100, func() { IsLogfmt(line) }); n != 0 {
		t.Fatalf("IsLogfmt: got %v allocs per run; want 0", n)
	}
}

func TestParseAllocs(t *testing.T) {
	line := `ts=2024-01-02T03:04:05Z level=info msg="hello world" dur=1.2s flag`
	var n int
	allocs := testing.AllocsPerRun(100, func() {
		_ = Parse(line, func(k, v string) { n += len(k) + len(v) })
	})
	if allocs != 0 {
		t.Fatalf("Parse of a line without escapes: got %v allocs per run; want 0", allocs)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`level=info msg="hello world" dur=1.2s flag`,
		`a="unterminated`,
		`msg="esc \" \\ \n \u00e9"`,
		`=x`,
		"\xff=\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var pairs []pair
		err := Parse(line, func(k, v string) {
			if k == "" {
				t.Fatalf("Parse(%q): empty key", line)
			}
			if !strings.Contains(line, k) {
				t.Fatalf("Parse(%q): key %q is not part of the line", line, k)
			}
			pairs = append(pairs, pair{k, v})
		})
		var se *SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("Parse(%q): got error %T; want *SyntaxError", line, err)
		}
		if se != nil && (se.Offset < 0 || se.Offset >= len(line)) {
			t.Fatalf("Parse(%q): offset %d out of range", line, se.Offset)
		}
		if IsLogfmt(line) && err != nil {
			t.Fatalf("IsLogfmt(%q) = true for a line Parse rejects: %s", line, err)
		}
		// Decoding must be deterministic.
		again, err2 := collect(line)
		if formatPairs(again) != formatPairs(pairs) || (err == nil) != (err2 == nil) {
			t.Fatalf("Parse(%q) is not deterministic", line)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := `ts=2024-01-02T03:04:05.123Z level=info caller=server.go:42 msg="request served" method=GET path=/api/v1/query status=200 dur=12.5ms`
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	var n int
	for b.Loop() {
		if err := Parse(line, func(k, v string) { n += len(k) + len(v) }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsLogfmt(b *testing.B) {
	line := `ts=2024-01-02T03:04:05.123Z level=info caller=server.go:42 msg="request served" method=GET path=/api/v1/query status=200 dur=12.5ms`
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if !IsLogfmt(line) {
			b.Fatal("not logfmt")
		}
	}
}
