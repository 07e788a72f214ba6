package logql

import (
	"strings"
	"testing"
)

// lexAll renders the tokens of src as "KIND:text" separated by spaces; a
// string shows its unquoted value and an error its message.
func lexAll(src string) string {
	l := lexer{src: src}
	var out []string
	for {
		t := l.next()
		switch t.kind {
		case tokEOF:
			return strings.Join(out, " ")
		case tokError:
			return strings.Join(append(out, "ERROR@"+itoa(t.pos)+":"+t.val), " ")
		case tokString:
			out = append(out, "STRING:"+t.val)
		case tokIdent, tokNumber, tokDuration, tokBytes:
			out = append(out, t.kind.String()+":"+t.text)
		default:
			out = append(out, t.text)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestLexer(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		if got := lexAll(src); got != want {
			t.Fatalf("lex(%q)\ngot  %s\nwant %s", src, got, want)
		}
	}
	f("", "")
	f(`{a="b"}`, "{ IDENTIFIER:a = STRING:b }")
	f(`{a!="b",c=~"d" , e!~ "f"}`, "{ IDENTIFIER:a != STRING:b , IDENTIFIER:c =~ STRING:d , IDENTIFIER:e !~ STRING:f }")
	f(`|= != |~ !~ | > >= < <= == =`, "|= != |~ !~ | > >= < <= == =")
	f(`"esc \"q\" \\ \n \u00e9 \x41"`, "STRING:esc \"q\" \\ \n é A")
	f("`raw \\d+ \"x\"`", `STRING:raw \d+ "x"`)
	f("5 -3 2.5 1e+06 1E-3", "NUMBER:5 NUMBER:-3 NUMBER:2.5 NUMBER:1e+06 NUMBER:1E-3")
	f("[5m] 1h30m 250ms 1.5s 1d 2w 1y 10µs -1s", "[ DURATION:5m ] DURATION:1h30m DURATION:250ms DURATION:1.5s DURATION:1d DURATION:2w DURATION:1y DURATION:10µs DURATION:-1s")
	f("10KB 1.5MiB 3b 2GB", "BYTES:10KB BYTES:1.5MiB BYTES:3b BYTES:2GB")
	f("count_over_time(x) by (a, b_2)", "IDENTIFIER:count_over_time ( IDENTIFIER:x ) IDENTIFIER:by ( IDENTIFIER:a , IDENTIFIER:b_2 )")
	f("a # comment\nb", "IDENTIFIER:a IDENTIFIER:b")
	f("a # trailing comment", "IDENTIFIER:a")
	f(`{a="b" "unterminated`, `{ IDENTIFIER:a = STRING:b ERROR@7:unterminated string`)
	f("\"new\nline\"", "ERROR@0:unterminated string")
	f("`raw", "ERROR@0:unterminated raw string")
	f(`"bad \q"`, `ERROR@5:invalid escape sequence in string`)
	f("a @ b", `IDENTIFIER:a ERROR@2:unexpected character '@'`)
	f("a \xff", `IDENTIFIER:a ERROR@2:unexpected byte 0xff`)
	f("5xx", `ERROR@0:invalid number, duration or byte size "5xx"`)
	f("1e999", `ERROR@0:number 1e999 out of range`)
	f("99999999999999999999h", `ERROR@0:invalid number, duration or byte size "99999999999999999999h"`)
	f("!", `ERROR@0:unexpected character '!'`)
}
