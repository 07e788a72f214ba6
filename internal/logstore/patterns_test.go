package logstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// patDay is midnight UTC of a day, in Unix ns.
var patDay = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixNano()

func patternRecs() []storage.PatternRecord {
	api := model.Labels{{Name: "level", Value: "info"}, {Name: "service", Value: "api"}}
	db := model.Labels{{Name: "grade", Value: "2"}, {Name: "service", Value: "db"}}
	return []storage.PatternRecord{
		{Labels: api, Level: "info", Pattern: "user <_> logged in", Buckets: []storage.PatternCount{{T: patDay + 10e9, Count: 3}, {T: patDay + 30e9, Count: 1}}},
		{Labels: db, Level: "unknown", Pattern: `slow query took=<_>`, Buckets: []storage.PatternCount{{T: patDay - 10e9, Count: 2}, {T: patDay, Count: 5}}},
	}
}

func readPatterns(t *testing.T, s storage.PatternReader, start, end int64, ms ...*model.LabelMatcher) []string {
	t.Helper()
	var out []string
	err := s.ReadPatterns(context.Background(), start, end, ms, func(r *storage.PatternRecord) {
		out = append(out, fmt.Sprintf("%s %s %q %v", r.Labels, r.Level, r.Pattern, r.Buckets))
	})
	if err != nil {
		t.Fatalf("ReadPatterns: %v", err)
	}
	slices.Sort(out)
	return out
}

// TestPatternsSurviveRestart writes patterns, reopens the store and reads
// them back, split by day, narrowed by selector and range.
func TestPatternsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.WritePatterns(context.Background(), patternRecs()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	day := int64(24 * time.Hour)
	got := readPatterns(t, s, patDay-day, patDay+day)
	want := []string{
		fmt.Sprintf(`{grade="2", service="db"} unknown "slow query took=<_>" [{%d 2}]`, patDay-10e9),
		fmt.Sprintf(`{grade="2", service="db"} unknown "slow query took=<_>" [{%d 5}]`, patDay),
		fmt.Sprintf(`{level="info", service="api"} info "user <_> logged in" [{%d 3} {%d 1}]`, patDay+10e9, patDay+30e9),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after a restart:\ngot  %q\nwant %q", got, want)
	}
	db, _ := model.NewLabelMatcher("service", model.MatchEqual, "db")
	if got := readPatterns(t, s, patDay, patDay+day, db); !reflect.DeepEqual(got, want[1:2]) {
		t.Errorf("service=db from midnight:\ngot  %q\nwant %q", got, want[1:2])
	}
	if got := readPatterns(t, s, patDay+40e9, patDay+day); len(got) != 0 {
		t.Errorf("after the last bucket: got %q; want nothing", got)
	}
	// Two files of the same day (two flushes) are both read.
	if err := s.WritePatterns(context.Background(), patternRecs()[:1]); err != nil {
		t.Fatal(err)
	}
	if got := readPatterns(t, s, patDay, patDay+day); len(got) != 3 {
		t.Errorf("after a second flush: got %q; want 3 records", got)
	}
}

func TestPatternsDamagedFileIsSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.WritePatterns(context.Background(), patternRecs()[:1]); err != nil {
		t.Fatal(err)
	}
	pdir := filepath.Join(dir, dayName(dayOf(patDay)), patternsDirName)
	if err := os.WriteFile(filepath.Join(pdir, "1-1"+patternsExt), []byte("VPAT\x01garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readPatterns(t, s, patDay, patDay+int64(time.Hour)); len(got) != 1 {
		t.Errorf("got %q; want the one good record", got)
	}
}

func TestPatternsGoWithRetention(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(o *Options) { o.Retention = 48 * time.Hour })
	// Buckets on the day before yesterday and yesterday, both kept now.
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour).UnixNano()
	recs := []storage.PatternRecord{{Labels: model.Labels{{Name: "service", Value: "api"}}, Level: "info", Pattern: "p",
		Buckets: []storage.PatternCount{{T: base - 10e9, Count: 1}, {T: base, Count: 2}}}}
	if err := s.WritePatterns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if got := readPatterns(t, s, base-int64(time.Hour), base+int64(time.Hour)); len(got) != 2 {
		t.Fatalf("before retention: got %q; want 2 records", got)
	}
	if err := s.Retain(time.Now().Add(24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(base)-1), patternsDirName)); !os.IsNotExist(err) {
		t.Errorf("patterns of the expired day: stat err = %v; want them removed", err)
	}
	want := []string{fmt.Sprintf(`{service="api"} info "p" [{%d 2}]`, base)}
	if got := readPatterns(t, s, base-int64(time.Hour), base+int64(time.Hour)); !reflect.DeepEqual(got, want) {
		t.Errorf("after retention: got %q; want %q", got, want)
	}
}

func TestEncodePatternsRoundTrip(t *testing.T) {
	recs := patternRecs()
	f, err := decodePatterns(encodePatterns(recs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.records, recs) {
		t.Errorf("got %+v; want %+v", f.records, recs)
	}
	b := encodePatterns(recs)
	b[len(b)-5] ^= 1
	if _, err := decodePatterns(b); err == nil {
		t.Error("a flipped bit: got no error; want a checksum mismatch")
	}
	b = encodePatterns(recs)
	b[4] = 9
	if _, err := decodePatterns(b); err == nil {
		t.Error("version 9: got no error")
	}
}

func FuzzDecodePatterns(f *testing.F) {
	f.Add(encodePatterns(patternRecs()))
	f.Add(encodePatterns(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := decodePatterns(b)
		if err != nil {
			return
		}
		if got := encodePatterns(pf.records); len(pf.records) > 0 && !reflect.DeepEqual(mustDecode(t, got).records, pf.records) {
			t.Errorf("re-encoding changed the records")
		}
	})
}

func mustDecode(t *testing.T, b []byte) *patternFile {
	f, err := decodePatterns(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
