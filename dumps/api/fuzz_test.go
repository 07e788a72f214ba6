package api

import (
	"strings"
	"testing"
)

// FuzzParseSearch feeds arbitrary Sentry searches to the parser: it must
// fail cleanly, and every term it returns has a key without spaces.
func FuzzParseSearch(f *testing.F) {
	f.Add("is:unresolved level:error timeout")
	f.Fuzz(func(t *testing.T, q string) {
		terms, _, err := parseSearch(q)
		if err != nil {
			return
		}
		for _, term := range terms {
			if term.Key == "" || strings.ContainsAny(term.Key, " ") {
				t.Fatalf("parseSearch(%q): term %+v", q, term)
			}
		}
	})
}

func TestParseSearch(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		terms, text, err := parseSearch(q)
		var got []string
		for _, term := range terms {
			neg := ""
			if term.Negated {
				neg = "!"
			}
			got = append(got, neg+term.Key+"="+term.Value)
		}
		if g := strings.Join(got, ",") + "|" + text; err != nil || g != want {
			t.Errorf("parseSearch(%q) = %q, %v; want %q", q, g, err, want)
		}
	}
	f("", "|")
	f("is:unresolved level:error", "is=unresolved,level=error|")
	f(`timeout release:"v 2" !environment:prod "two words"`, "release=v 2,!environment=prod|timeout two words")
	f(`tags[user]:"a\"b"`, `tags[user]=a"b|`)
	f("http://x:8080", "http=//x:8080|")
}
