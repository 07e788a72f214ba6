package es

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// bulkDocs are documents with ids d0, d1, …
type bulkDocs []string

func newDocs(n int) bulkDocs {
	d := make(bulkDocs, n)
	for i := range d {
		d[i] = fmt.Sprintf(`{"create":{"_index":"x","_id":"d%d"}}`+"\n"+`{"n":%d}`+"\n", i, i)
	}
	return d
}

func (d bulkDocs) body(idx []int) []byte {
	var b []byte
	for _, i := range idx {
		b = append(b, d[i]...)
	}
	return b
}

func (d bulkDocs) all() []int {
	idx := make([]int, len(d))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func newFakeWriter(t *testing.T, h http.Handler) (*BulkWriter, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientOptions{URLs: []string{srv.URL}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	retry := &resilience.Retry{MaxAttempts: 4, Backoff: resilience.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond, Jitter: 0.5}}
	return &BulkWriter{Client: c, Policy: resilience.Policy{Retry: retry}}, srv
}

// outcomes collects what done is told, by item.
type outcomes struct {
	mu  sync.Mutex
	got map[int]ItemResult
}

func (o *outcomes) done(i int, r ItemResult) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.got == nil {
		o.got = map[int]ItemResult{}
	}
	if _, dup := o.got[i]; dup {
		return fmt.Errorf("item %d done twice", i)
	}
	o.got[i] = r
	return nil
}

func TestBulkWriterRetriesOnlyFailedItems(t *testing.T) {
	f := &estest.Fake{Bulk: func(n int, ids []string, _ []byte) (int, string) {
		if n == 1 {
			return 200, estest.Items(201, 429, 400, 409, 503, 404)
		}
		return 200, estest.AllCreated(len(ids))
	}}
	w, _ := newFakeWriter(t, f)
	retries := prometheus.NewCounter(prometheus.CounterOpts{Name: "retries"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests"}, []string{"outcome"})
	w.Metrics = BulkMetrics{Requests: requests, ItemRetries: retries, Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d"})}
	docs := newDocs(6)
	var o outcomes
	if err := w.Send(context.Background(), docs.all(), docs.body, o.done); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if len(f.Requests()) != 2 {
		t.Fatalf("got %d bulk requests, want 2", len(f.Requests()))
	}
	if got, want := strings.Join(f.Requests()[1], ","), "d1,d4"; got != want {
		t.Errorf("second request: got ids %s, want %s (only the 429 and 503 items)", got, want)
	}
	want := []Outcome{Created, Created, Rejected, Duplicate, Created, Failed}
	for i, w := range want {
		if g := o.got[i]; g.Outcome != w {
			t.Errorf("item %d: got %s (%d %s), want %s", i, g.Outcome, g.Status, g.Reason, w)
		}
	}
	if got := testutil.ToFloat64(retries); got != 2 {
		t.Errorf("item retries: got %v, want 2", got)
	}
	if got := testutil.ToFloat64(requests.WithLabelValues("ok")); got != 2 {
		t.Errorf("ok requests: got %v, want 2", got)
	}
}

func TestBulkWriterDoneError(t *testing.T) {
	f := &estest.Fake{Bulk: func(_ int, ids []string, _ []byte) (int, string) { return 200, estest.Items(201, 400, 201) }}
	w, _ := newFakeWriter(t, f)
	docs := newDocs(3)
	n := 0
	err := w.Send(context.Background(), docs.all(), docs.body, func(i int, r ItemResult) error {
		n++
		if r.Outcome == Rejected {
			return fmt.Errorf("no dead-letter topic for item %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "no dead-letter topic for item 1" {
		t.Errorf("Send: got %v, want done's error", err)
	}
	if n != 2 {
		t.Errorf("done called %d times, want 2: Send stops at its error", n)
	}
}

func TestBulkWriterFailsAfterRetries(t *testing.T) {
	f := &estest.Fake{Bulk: func(int, []string, []byte) (int, string) {
		return 503, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]"},"status":503}`
	}}
	w, _ := newFakeWriter(t, f)
	docs := newDocs(3)
	var o outcomes
	err := w.Send(context.Background(), docs.all(), docs.body, o.done)
	if err == nil || !strings.Contains(err.Error(), "state not recovered") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Send: got %v, want an error after 4 attempts with the reason", err)
	}
	if len(f.Requests()) != 4 {
		t.Errorf("got %d attempts, want MaxAttempts = 4", len(f.Requests()))
	}
	if len(o.got) != 0 {
		t.Errorf("done called for %v; want no item done", o.got)
	}
}

func TestBulkWriterFailsAtOnce(t *testing.T) {
	f := &estest.Fake{Bulk: func(int, []string, []byte) (int, string) {
		return 401, `{"error":{"type":"security_exception","reason":"missing authentication credentials"},"status":401}`
	}}
	w, _ := newFakeWriter(t, f)
	docs := newDocs(2)
	var o outcomes
	err := w.Send(context.Background(), docs.all(), docs.body, o.done)
	if err == nil || !strings.Contains(err.Error(), "status 401: security_exception: missing authentication credentials") {
		t.Fatalf("Send: got %v, want the 401 with its reason", err)
	}
	if len(f.Requests()) != 1 {
		t.Errorf("got %d requests, want 1: a 401 is not retried", len(f.Requests()))
	}
}

func TestBulkWriterConnectionRefused(t *testing.T) {
	w, srv := newFakeWriter(t, &estest.Fake{})
	srv.Close()
	docs := newDocs(3)
	var o outcomes
	err := w.Send(context.Background(), docs.all(), docs.body, o.done)
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Send with Elasticsearch gone: got %v, want an error after MaxAttempts", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Send(ctx, docs.all(), docs.body, o.done); err == nil {
		t.Fatal("Send with a cancelled context: got nil")
	}
}

func TestBulkWriterSplitsOn413(t *testing.T) {
	f := &estest.Fake{Bulk: func(_ int, ids []string, _ []byte) (int, string) {
		if slices.Contains(ids, "d5") {
			return 413, ""
		}
		return 200, estest.AllCreated(len(ids))
	}}
	w, _ := newFakeWriter(t, f)
	docs := newDocs(8)
	var o outcomes
	if err := w.Send(context.Background(), docs.all(), docs.body, o.done); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i := range docs {
		want := Created
		if i == 5 {
			want = Rejected
		}
		if g := o.got[i]; g.Outcome != want {
			t.Errorf("item %d: got %s, want %s", i, g.Outcome, want)
		}
	}
	if r := o.got[5]; r.Status != 413 || r.ErrType != "request_entity_too_large" {
		t.Errorf("item 5: got %+v, want status 413 request_entity_too_large", r)
	}
}
