package ingester

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// outageES is an Elasticsearch stand-in for the error paths a shared real
// cluster cannot be made to produce on demand: it answers bulk requests
// 503, or never, or takes them (and remembers their ids).
type outageES struct {
	estest.Fake
	phase atomic.Int32 // outage503, outageHang, outageOver
	stop  chan struct{}

	mu     sync.Mutex
	stored map[string]int // id → times created
}

const (
	outage503 = iota
	outageHang
	outageOver
)

func newOutageES() *outageES {
	f := &outageES{stop: make(chan struct{}), stored: map[string]int{}}
	f.Bulk = func(_ int, ids []string, _ []byte) (int, string) {
		if f.phase.Load() == outage503 {
			return http.StatusServiceUnavailable, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master]"},"status":503}`
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		st := make([]int, len(ids))
		for i, id := range ids {
			st[i] = http.StatusCreated
			if f.stored[id] > 0 {
				st[i] = http.StatusConflict
			}
			f.stored[id]++
		}
		return http.StatusOK, estest.Items(st...)
	}
	return f
}

func (f *outageES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_bulk" && f.phase.Load() == outageHang {
		select { // no answer: the client's dynamic timeout ends the wait
		case <-r.Context().Done():
		case <-f.stop:
		}
		return
	}
	f.Fake.ServeHTTP(w, r)
}

func (f *outageES) storedIDs() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.stored))
	for k, v := range f.stored {
		m[k] = v
	}
	return m
}

// metric returns the value of the series name{labels…} in reg, -1 when
// there is none.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestElasticsearchOutageOpensTheBreaker: while Elasticsearch fails, the
// log store's circuit breaker opens (in /metrics) and writes fail fast
// without a request; a cluster that hangs is cut short by the dynamic
// timeout; once it answers again a half-open probe closes the breaker and
// the ingester stores every record it held, none lost, none dead-lettered.
func TestElasticsearchOutageOpensTheBreaker(t *testing.T) {
	f := newOutageES()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.stop) })
	reg := prometheus.NewRegistry()
	o := esstore.DefaultOptions()
	o.URLs = []string{srv.URL}
	o.RetryBase, o.RetryMax, o.MaxAttempts = time.Millisecond, 5*time.Millisecond, 4
	o.Write = es.WriteResilience{TimeoutFloor: 20 * time.Millisecond, TimeoutCeiling: 200 * time.Millisecond, BreakerOpenFor: 500 * time.Millisecond}
	o.Logger, o.Registerer = slog.New(slog.DiscardHandler), reg
	store, err := esstore.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	state := func(s string) float64 {
		return metric(t, reg, "vigil_resilience_breaker_state", map[string]string{"name": "es-logs", "state": s})
	}
	if state("closed") != 1 {
		t.Fatalf("breaker state closed: got %v, want 1 before any write", state("closed"))
	}

	// 503s: the writes fail and the breaker opens.
	recs := []model.LogRecord{{ID: model.RecordID{0xff, 0xff}, Timestamp: 1, Service: "svc", Message: "direct"}}
	eventually(t, "the breaker to open", func() bool {
		err := store.Write(context.Background(), recs)
		if err == nil {
			t.Fatal("Write succeeded against a cluster answering 503")
		}
		return state("open") == 1
	})
	if state("closed") != 0 {
		t.Errorf("breaker state closed: got %v, want 0 while open", state("closed"))
	}

	// Open: a write fails fast, with no request to the cluster.
	failedFast := false
	for range 20 {
		before := len(f.Requests())
		err := store.Write(context.Background(), recs)
		if errors.Is(err, resilience.ErrOpen) {
			if n := len(f.Requests()); n != before {
				t.Fatalf("a write refused by the open breaker sent %d bulk requests", n-before)
			}
			failedFast = true
			break
		}
		eventually(t, "the breaker to open again", func() bool { return state("open") == 1 })
	}
	if !failedFast {
		t.Fatal("no write failed fast with resilience.ErrOpen while the breaker was open")
	}
	if metric(t, reg, "vigil_resilience_breaker_rejected_total", map[string]string{"name": "es-logs"}) < 1 {
		t.Error("vigil_resilience_breaker_rejected_total{name=\"es-logs\"}: want at least 1")
	}

	// The cluster now hangs; the ingester starts with records to store.
	f.phase.Store(outageHang)
	q := openQueue(t)
	const n = 300
	for i := 0; i < n; i += 50 {
		publish(t, q, i, 50)
	}
	io := DefaultOptions()
	io.MaxBatchWait, io.MaxBatchRecords = 10*time.Millisecond, 100
	io.Logger, io.Registerer = slog.New(slog.DiscardHandler), reg
	in := New(io, q, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// The probe after the open period hangs, runs into the dynamic
	// timeout and reopens the breaker.
	eventually(t, "a bulk request to run into the dynamic timeout", func() bool {
		return metric(t, reg, "vigil_resilience_timeouts_total", map[string]string{"name": "es-logs"}) >= 1
	})
	if got := metric(t, reg, "vigil_resilience_timeout_seconds", map[string]string{"name": "es-logs"}); got <= 0 || got > 0.2 {
		t.Errorf("vigil_resilience_timeout_seconds: got %v, want within (0, 0.2] (the ceiling)", got)
	}
	if got := len(f.storedIDs()); got != 0 {
		t.Fatalf("stored %d records during the outage", got)
	}

	// The cluster is back: a half-open probe closes the breaker, and every
	// record is stored.
	f.phase.Store(outageOver)
	eventually(t, "every record to be stored and the breaker closed", func() bool {
		ids := f.storedIDs()
		for i := range n {
			if ids[model.RecordID{byte(i), byte(i >> 8)}.String()] == 0 {
				return false
			}
		}
		return state("closed") == 1
	})
	for _, to := range []string{"open", "half-open", "closed"} {
		if metric(t, reg, "vigil_resilience_breaker_transitions_total", map[string]string{"name": "es-logs", "to": to}) < 1 {
			t.Errorf("vigil_resilience_breaker_transitions_total{to=%q}: want at least 1", to)
		}
	}
	if got := metric(t, reg, "vigil_ingester_dead_lettered_total", nil); got != 0 {
		t.Errorf("vigil_ingester_dead_lettered_total: got %v, want 0: the cluster refused nothing", got)
	}
}
