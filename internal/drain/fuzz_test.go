package drain

import (
	"strings"
	"testing"
)

func FuzzTokenize(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzTokenize.
	f.Add("ts=2024-05-01T12:00:00Z level=info msg=started")
	f.Add(`{"msg":"request","status":200,"took":"10ms"}`)
	f.Fuzz(func(t *testing.T, line string) {
		toks := Tokenize(line)
		if len(toks) > MaxTokens {
			t.Fatalf("Tokenize(%q): %d tokens; want at most %d", line, len(toks), MaxTokens)
		}
		for i, tok := range toks {
			if tok.Text == "" {
				t.Fatalf("Tokenize(%q): token %d is empty", line, i)
			}
			if i == 0 && tok.Glued {
				t.Fatalf("Tokenize(%q): first token is glued", line)
			}
		}
		// Joining gives the line back with white space runs as one space.
		if got, want := Join(toks), strings.Join(strings.FieldsFunc(line, func(r rune) bool {
			return r < 0x80 && isSpace(byte(r))
		}), " "); got != want {
			t.Fatalf("Join(Tokenize(%q)) = %q; want %q", line, got, want)
		}
		d := New(DefaultConfig())
		if c := d.Train(line); c != nil && len(line) <= 3000 {
			if c2 := d.Train(line); c2 != c || c2.Pattern() != c.Pattern() {
				t.Fatalf("training %q twice gave another cluster or pattern", line)
			}
		}
	})
}
