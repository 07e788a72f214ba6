package profiler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grafana/pyroscope-go"

	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/profiler/profilertest"
)

// TestPyroscopeGoPushes runs Grafana's pyroscope-go client against
// POST /ingest: its CPU, heap and goroutine profiles are stored under the
// application's name and tags, and merge.
func TestPyroscopeGoPushes(t *testing.T) {
	pa := startPath(t, DefaultOptions())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); profilertest.BurnCPU(stop) }()
	defer func() { close(stop); wg.Wait() }()

	prof, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "pyro.app",
		ServerAddress:   pa.srv.URL,
		UploadRate:      time.Second,
		Tags:            map[string]string{"env": "test"},
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU, pyroscope.ProfileInuseSpace, pyroscope.ProfileGoroutines},
	})
	if err != nil {
		t.Fatal(err)
	}
	cpuSel := selector(t, "cpu", "service", "pyro.app", "env", "test")
	pa.waitProfiles(t, cpuSel, 2, 30*time.Second)
	pa.waitProfiles(t, selector(t, "heap", "service", "pyro.app"), 1, 30*time.Second)
	pa.waitProfiles(t, selector(t, "goroutine", "service", "pyro.app"), 1, 30*time.Second)
	if err := prof.Stop(); err != nil {
		t.Fatal(err)
	}
	merged, err := pa.store.Merge(context.Background(), storage.MergeQuery{ProfileSelector: cpuSel})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := profilertest.Top(merged, "cpu"); !strings.HasSuffix(got, ".BurnCPU") {
		t.Errorf("top function of pyroscope-go's merged CPU profiles: %q; want BurnCPU", got)
	}
	if v := testutil.ToFloat64(pa.p.m.ingest.WithLabelValues("bad_request")); v != 0 {
		t.Errorf("%v of pyroscope-go's requests refused", v)
	}
}
