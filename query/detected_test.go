package query

import (
	"testing"
)

func TestFieldType(t *testing.T) {
	f := func(want string, values ...string) {
		t.Helper()
		m := map[string]bool{}
		for _, v := range values {
			m[v] = true
		}
		if got := fieldType(m); got != want {
			t.Errorf("fieldType(%v): got %s; want %s", values, got, want)
		}
	}
	f("int", "200", "-3")
	f("float", "1.5", "2")
	f("boolean", "true", "false")
	f("duration", "150ms", "1h2m")
	f("bytes", "10KB", "1.5 MiB")
	f("string", "200", "ok")
}

// FuzzLineFields feeds arbitrary log lines (seeds in
// testdata/fuzz/FuzzLineFields) to detected_fields' field extraction:
// every field it reports has a valid label name and names its parser.
func FuzzLineFields(f *testing.F) {
	f.Add(`{"a":{"b":1},"c":"d"}`)
	f.Fuzz(func(t *testing.T, line string) {
		lineFields(line, func(name, value, parser string, path []string) {
			if name == "" || parser != "json" && parser != "logfmt" {
				t.Fatalf("%q: field %q from parser %q", line, name, parser)
			}
			for i, c := range []byte(name) {
				if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
					t.Fatalf("%q: field name %q is not a label name", line, name)
				}
			}
			if parser == "json" && len(path) == 0 {
				t.Fatalf("%q: json field %q without a path", line, name)
			}
		})
	})
}
