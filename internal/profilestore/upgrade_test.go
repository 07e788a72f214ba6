package profilestore

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// formatCase is one profile of a store kept in testdata/format-v<N>: the
// store's files as that version wrote them, and the pprof files it was
// given, described in manifest.json.
type formatCase struct {
	File     string            `json:"file"`
	Type     string            `json:"type"`
	Labels   map[string]string `json:"labels"`
	Time     int64             `json:"time"`
	Duration int64             `json:"duration"`
}

// TestFormatV1 opens a store written by format version 1 and reads every
// profile back. A later format must keep passing it (by reading version 1
// or upgrading it on open).
func TestFormatV1(t *testing.T) {
	src := filepath.Join("testdata", "format-v1")
	var cases []formatCase
	b, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(src, "store"))); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	defer s.Close()
	if st := s.DiskStats(); st.Profiles != int64(len(cases)) {
		t.Fatalf("got %d profiles, want %d", st.Profiles, len(cases))
	}
	for _, c := range cases {
		pb, err := os.ReadFile(filepath.Join(src, c.File))
		if err != nil {
			t.Fatal(err)
		}
		p := model.NewProfile(c.Type, c.Labels, c.Time, c.Duration, pb)
		got, _, err := s.Profile(context.Background(), p.ID)
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		if !reflect.DeepEqual(sampleKeys(got), sampleKeys(mustParse(t, pb))) {
			t.Fatalf("%s: samples differ", c.File)
		}
	}
}
