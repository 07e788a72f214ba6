package profiler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/profilestore"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

// path is the all-in-one path of profiles under test: a profiler
// publishing to a real embedded queue, the profile ingester consuming it
// into a real embedded store.
type path struct {
	p     *Profiler
	store *profilestore.Store
	srv   *httptest.Server // the profiler's HTTP API (POST /ingest)
}

func startPath(t *testing.T, o Options) *path {
	t.Helper()
	dir := t.TempDir()
	q, err := diskqueue.Open(diskqueue.Options{Dir: dir + "/queue-profiles"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := profilestore.Open(profilestore.Options{Dir: dir + "/profiles"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	o.Registerer = reg // the metrics register as in a daemon
	p := New(o, q)
	mux := http.NewServeMux()
	p.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	io := ingester.DefaultOptions()
	io.MaxBatchRecords, io.MaxBatchWait = ingester.DefaultMaxBatchProfiles, 20*time.Millisecond
	in := ingester.NewProfileIngester(io, q, st, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}()
	}
	run(p.Run)
	run(in.Run)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := q.Close(); err != nil {
			t.Error(err)
		}
	})
	return &path{p: p, store: st, srv: srv}
}

// waitProfiles waits until the store holds at least n profiles of sel.
func (pa *path) waitProfiles(t *testing.T, sel storage.ProfileSelector, n int, within time.Duration) []storage.ProfileMeta {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ms, err := pa.store.Profiles(context.Background(), sel, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d profiles of %+v stored after %s; want at least %d", len(ms), sel, within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var selector = profilertest.Selector

// stackValue sums the values of sample type st of the samples whose stack
// contains a function whose name contains fn.
func stackValue(p *profile.Profile, st, fn string) int64 {
	idx := -1
	for i, s := range p.SampleType {
		if s.Type == st {
			idx = i
		}
	}
	var sum int64
	for _, s := range p.Sample {
	loc:
		for _, l := range s.Location {
			for _, ln := range l.Line {
				if ln.Function != nil && strings.Contains(ln.Function.Name, fn) {
					sum += s.Value[idx]
					break loc
				}
			}
		}
	}
	return sum
}
