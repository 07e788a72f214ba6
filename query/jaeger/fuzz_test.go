package jaeger

import (
	"testing"
)

// FuzzParams feeds arbitrary request values to the parameter parsers: they
// return a value or a paramError, never panic.
func FuzzParams(f *testing.F) {
	f.Add(`{"http.status_code":"500"}`, "error:true", "1.2ms", "00ff")
	f.Add(`{"a":1,"b":true}`, "k:v:w", "2d", "abc")
	f.Fuzz(func(t *testing.T, tags, tag, dur, id string) {
		if _, err := parseTags([]string{tags}, []string{tag}); err != nil {
			if _, ok := err.(*paramError); !ok {
				t.Fatalf("parseTags: %T %v", err, err)
			}
		}
		if _, err := parseDuration("d", dur); err != nil {
			if _, ok := err.(*paramError); !ok {
				t.Fatalf("parseDuration: %T %v", err, err)
			}
		}
		ParseTraceID(id)
	})
}
