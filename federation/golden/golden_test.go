package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/default from the generator")

// TestDefaultRulesMatchTestdata keeps the shipped rules for the SDK under
// review: a change to the generator shows as a diff of testdata/default
// (go test ./federation/golden -run DefaultRules -update).
func TestDefaultRulesMatchTestdata(t *testing.T) {
	dir := filepath.Join("testdata", "default")
	files := Generate(DefaultConfig())
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteDir(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		t.Errorf("testdata has %d files, the generator %d; run with -update", len(entries), len(files))
	}
	for _, f := range files {
		got, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatalf("%v; run with -update", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from testdata; run with -update and review the diff", f.Name)
		}
	}
}
