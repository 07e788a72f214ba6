package esprofilestore

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// BenchmarkWriteProfiles is the Elasticsearch store's write rate for
// 10-second CPU profiles of one service (the synthetic program of the
// shared tests: 300 functions, 500 stacks, about 1,000 samples each), in
// batches of 50, and what a profile costs on disk once its indices are
// force-merged, against its gzipped pprof size.
func BenchmarkWriteProfiles(b *testing.B) {
	s := openES(b, testOptions(b))
	ctx := context.Background()
	pg := profiletest.NewProgram(1, 300, 500)
	const batch = 50
	// Profiles are made before the clock runs; the pool repeats with new
	// times (and so new ids) when the benchmark wants more.
	pool := make([][]byte, 200)
	var gz int64
	for i := range pool {
		pool[i] = pg.CPUProfile(i, profiletest.T0, true)
	}
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ps := make([]model.Profile, batch)
		for j := range ps {
			ts := profiletest.T0 + int64(n)*10e9
			pp := pool[n%len(pool)]
			gz += int64(len(pp))
			ps[j] = model.NewProfile("cpu", profiletest.Labels("service", "checkout", "instance", "10.0.0.7:8080", "job", "checkout"), ts, 10e9, pp)
			n++
		}
		if err := s.Write(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "profiles/s")
	stored := storedBytes(b, s)
	b.ReportMetric(float64(stored)/float64(n), "stored-B/profile")
	b.ReportMetric(float64(gz)/float64(n), "gzip-B/profile")
	b.ReportMetric(float64(stored)/float64(gz)*100, "stored-%-of-gzip")
}

// storedBytes force-merges the store's indices into one segment each and
// returns the size of their primaries on disk.
func storedBytes(b *testing.B, s *Store) int64 {
	ctx := context.Background()
	if err := s.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/" + s.pattern() + "/_flush", "/" + s.pattern() + "/_forcemerge?max_num_segments=1"} {
		if st, body, err := s.Client.Do(ctx, http.MethodPost, path, nil, ""); err != nil || st != http.StatusOK {
			b.Fatalf("POST %s: %d %s %v", path, st, body, err)
		}
	}
	st, body, err := s.Client.Do(ctx, http.MethodGet, "/"+s.pattern()+"/_stats/store", nil, "")
	if err != nil || st != http.StatusOK {
		b.Fatalf("index stats: %d %s %v", st, body, err)
	}
	var r struct {
		All struct {
			Primaries struct {
				Store struct {
					Bytes int64 `json:"size_in_bytes"`
				} `json:"store"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		b.Fatal(err)
	}
	return r.All.Primaries.Store.Bytes
}

// BenchmarkMergeHour merges one hour of 10-second CPU profiles of one
// service (360 profiles of the program of internal/profilestore's
// BenchmarkMergeHour: 3,000 functions, 6,000 stacks, 97 KB gzipped each)
// from Elasticsearch.
func BenchmarkMergeHour(b *testing.B) {
	s := openES(b, testOptions(b))
	ctx := context.Background()
	ps := profiletest.Series360(profiletest.NewProgram(42, 3000, 6000), 360, profiletest.T0, false)
	for i := 0; i < len(ps); i += 36 {
		if err := s.Write(ctx, ps[i:i+36]); err != nil {
			b.Fatal(err)
		}
	}
	profiletest.Refresh(b, s)
	q := storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu",
		Matchers: []*model.LabelMatcher{profiletest.Matcher(b, "service", model.MatchEqual, "checkout")},
		Start:    profiletest.T0, End: profiletest.T0 + 3600e9}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := s.Merge(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Sample) == 0 {
			b.Fatal("empty merge")
		}
	}
}
