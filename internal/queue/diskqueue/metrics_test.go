package diskqueue

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
)

// gather returns the value of each metric of reg without labels, and the
// sample count of each histogram, by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]float64)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				got[mf.GetName()] += m.Counter.GetValue()
			case m.Gauge != nil:
				got[mf.GetName()] += m.Gauge.GetValue()
			case m.Histogram != nil:
				got[mf.GetName()+"_count"] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	size := recordSize(defaultTenantLen, 1, 2)
	dir := t.TempDir()
	q := mustOpen(t, dir, func(o *Options) { o.MaxBytes = 2 * size; o.Registerer = reg })
	publishAll(t, q, "k", []string{"v0", "v1"})
	if err := q.Publish(context.Background(), "k", []byte("v2")); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("Publish beyond the bound: got %v; want ErrFull", err)
	}
	mustFetch(t, q)
	m := mustFetch(t, q)
	mustCommit(t, q, m)
	mustPublish(t, q, "k", "v2")

	got := gather(t, reg)
	f := func(name string, want float64) {
		t.Helper()
		if got[name] != want {
			t.Fatalf("%s = %v; want %v", name, got[name], want)
		}
	}
	f("vigil_queue_published_messages_total", 3)
	f("vigil_queue_published_bytes_total", float64(3*size))
	f("vigil_queue_consumed_messages_total", 2)
	f("vigil_queue_committed_bytes_total", float64(2*size))
	f("vigil_queue_unconsumed_bytes", float64(size))
	f("vigil_queue_full_rejections_total", 1)
	if got["vigil_queue_fsync_duration_seconds_count"] < 4 {
		t.Fatalf("vigil_queue_fsync_duration_seconds has %v samples; want at least one per publish and commit", got["vigil_queue_fsync_duration_seconds_count"])
	}
	mustClose(t, q)

	// Reopening on the same registry shares the metrics instead of failing.
	q = mustOpen(t, dir, func(o *Options) { o.Registerer = reg })
	mustFetch(t, q)
	mustClose(t, q)
	if got = gather(t, reg); got["vigil_queue_consumed_messages_total"] != 3 {
		t.Fatalf("after reopening, vigil_queue_consumed_messages_total = %v; want 3", got["vigil_queue_consumed_messages_total"])
	}
}
