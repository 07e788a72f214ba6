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

// TestESPatterns writes patterns across midnight, twice (a retried
// flush), and reads them back by selector and range; retention deletes
// the pattern index of an expired day.
func TestESPatterns(t *testing.T) {
	s := openES(t, func(o *Options) { o.Retention = 72 * time.Hour })
	ctx := context.Background()
	mid := time.Now().UTC().Truncate(24 * time.Hour).UnixNano()
	db := model.Labels{{Name: "grade", Value: "2"}, {Name: "service", Value: "db"}}
	recs := []storage.PatternRecord{
		{Labels: model.Labels{{Name: "level", Value: "info"}, {Name: "service", Value: "api"}}, Level: "info", Pattern: "user <_> logged in",
			Buckets: []storage.PatternCount{{T: mid + 10e9, Count: 3}, {T: mid + 30e9, Count: 1}}},
		{Labels: db, Level: "unknown", Pattern: "slow query took=<_>", Buckets: []storage.PatternCount{{T: mid - 10e9, Count: 2}, {T: mid, Count: 5}}},
		{Labels: db, Level: "unknown", Pattern: "ancient", Buckets: []storage.PatternCount{{T: mid - 10*24*int64(time.Hour), Count: 1}}},
	}
	for range 2 {
		if err := s.WritePatterns(ctx, recs); err != nil {
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
		fmt.Sprintf(`{level="info", service="api"} info "user <_> logged in" [{%d 3} {%d 1}]`, mid+10e9, mid+30e9),
	}
	if got := readPatterns(t, s, mid-day, mid+day); !slices.Equal(got, want) {
		t.Errorf("written twice, read once:\ngot  %q\nwant %q", got, want)
	}
	re, _ := model.NewLabelMatcher("service", model.MatchRegexp, "d.*")
	if got := readPatterns(t, s, mid, mid+day, re); !slices.Equal(got, want[1:2]) {
		t.Errorf(`service=~"d.*" from midnight:`+"\ngot  %q\nwant %q", got, want[1:2])
	}
	if got := readPatterns(t, s, mid+40e9, mid+day); len(got) != 0 {
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
