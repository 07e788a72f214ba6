package esstore

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func TestPatternPrefix(t *testing.T) {
	for in, want := range map[string]string{"vigil-logs-": "vigil-patterns-", "acme-": "acme_patterns-", "x.logs.": "x.logs_patterns-"} {
		if got := patternPrefix(in); got != want {
			t.Errorf("patternPrefix(%q) = %q; want %q", in, got, want)
		}
	}
}

func readPatterns(t *testing.T, s *Store, start, end int64, ms ...*model.LabelMatcher) []string {
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

// TestESPatterns writes patterns across midnight in two flushes, whose
// counts add up in the hour's document, and reads them back by selector
// and range; retention deletes the pattern index of an expired day.
func TestESPatterns(t *testing.T) {
	s := openES(t, func(o *Options) { o.Retention = 72 * time.Hour })
	ctx := context.Background()
	mid := time.Now().UTC().Truncate(24 * time.Hour).UnixNano()
	hr := time.Now().UTC().Truncate(time.Hour).UnixNano() // still kept in memory at the second flush
	db := model.Labels{{Name: "grade", Value: "2"}, {Name: "service", Value: "db"}}
	recs := []storage.PatternRecord{
		{Labels: model.Labels{{Name: "level", Value: "info"}, {Name: "service", Value: "api"}}, Level: "info", Pattern: "user <_> logged in",
			Buckets: []storage.PatternCount{{T: hr + 10e9, Count: 3}, {T: hr + 30e9, Count: 1}}},
		{Labels: db, Level: "unknown", Pattern: "slow query took=<_>", Buckets: []storage.PatternCount{{T: mid - 10e9, Count: 2}, {T: mid, Count: 5}}},
		{Labels: db, Level: "unknown", Pattern: "ancient", Buckets: []storage.PatternCount{{T: mid - 10*24*int64(time.Hour), Count: 1}}},
	}
	second := []storage.PatternRecord{{Labels: recs[0].Labels, Level: "info", Pattern: "user <_> logged in",
		Buckets: []storage.PatternCount{{T: hr + 30e9, Count: 2}, {T: hr + 40e9, Count: 1}}}}
	for _, flush := range [][]storage.PatternRecord{recs, second} {
		if err := s.WritePatterns(ctx, flush); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	day := int64(24 * time.Hour)
	want := []string{
		fmt.Sprintf(`{grade="2", service="db"} unknown "slow query took=<_>" [{%d 2}]`, mid-10e9),
		fmt.Sprintf(`{grade="2", service="db"} unknown "slow query took=<_>" [{%d 5}]`, mid),
		fmt.Sprintf(`{level="info", service="api"} info "user <_> logged in" [{%d 3} {%d 3} {%d 1}]`, hr+10e9, hr+30e9, hr+40e9),
	}
	if got := readPatterns(t, s, mid-day, hr+day); !slices.Equal(got, want) {
		t.Errorf("two flushes:\ngot  %q\nwant %q", got, want)
	}
	re, _ := model.NewLabelMatcher("service", model.MatchRegexp, "d.*")
	if got := readPatterns(t, s, mid, hr+day, re); !slices.Equal(got, want[1:2]) {
		t.Errorf(`service=~"d.*" from midnight:`+"\ngot  %q\nwant %q", got, want[1:2])
	}
	if got := readPatterns(t, s, hr+int64(time.Hour), hr+day); len(got) != 0 {
		t.Errorf("after the last bucket: got %q; want nothing", got)
	}
	deleted, err := s.DeleteExpired(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{s.patternIndex(indexDay(mid - 10*day))}; !slices.Equal(deleted, want) {
		t.Errorf("retention deleted %v; want %v", deleted, want)
	}
	status, _, err := s.c.Do(ctx, http.MethodGet, "/"+s.patternIndex(indexDay(mid)), nil, "")
	if err != nil || status != 200 {
		t.Errorf("today's pattern index: %d %v; want it kept", status, err)
	}
}

// FuzzDecodeBuckets: the buckets of a pattern document decode without
// panicking whatever their bytes, and encoded buckets decode back.
func FuzzDecodeBuckets(f *testing.F) {
	bs := []storage.PatternCount{{T: -20e9, Count: 1}, {T: 1_700_000_000e9, Count: 5}, {T: 1_700_000_010e9, Count: 0}}
	f.Add(encodeBuckets(nil, bs))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeBuckets(nil, b)
		if !ok {
			return
		}
		for i := 1; i < len(got); i++ {
			if got[i].T < got[i-1].T {
				return // not what encodeBuckets writes; nothing to compare
			}
		}
		if again, ok := decodeBuckets(nil, encodeBuckets(nil, got)); !ok || !slices.Equal(again, got) {
			t.Errorf("decode(encode(%v)) = %v, %v", got, again, ok)
		}
	})
}

// TestESPatternsMemoryBound: beyond maxHourDocs the store forgets
// documents, and counts added afterwards go to new documents that readers
// add up with the old ones.
func TestESPatternsMemoryBound(t *testing.T) {
	defer func(n int) { maxHourDocs = n }(maxHourDocs)
	maxHourDocs = 2
	s := openES(t, nil)
	ctx := context.Background()
	hr := time.Now().UTC().Truncate(time.Hour).UnixNano()
	var recs []storage.PatternRecord
	for i := range 5 {
		recs = append(recs, storage.PatternRecord{Labels: model.Labels{{Name: "service", Value: "api"}}, Level: "info",
			Pattern: fmt.Sprintf("pattern %d", i), Buckets: []storage.PatternCount{{T: hr, Count: 1}}})
	}
	for range 2 {
		if err := s.WritePatterns(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if n := len(s.patHours.docs); n > maxHourDocs {
			t.Fatalf("documents in memory = %d; want at most %d", n, maxHourDocs)
		}
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	total := map[string]int64{}
	err := s.ReadPatterns(ctx, hr, hr+int64(time.Hour), nil, func(r *storage.PatternRecord) {
		for _, b := range r.Buckets {
			total[r.Pattern] += b.Count
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if p := fmt.Sprintf("pattern %d", i); total[p] != 2 {
			t.Errorf("%s: %d lines; want 2 (two flushes of one)", p, total[p])
		}
	}
}
