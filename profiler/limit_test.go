package profiler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/queue"
)

// smallQueue is a producer that, like a spool in front of Kafka, carries
// messages of at most limit bytes.
type smallQueue struct {
	limit     int
	published int
}

func (q *smallQueue) Publish(context.Context, string, []byte) error { q.published++; return nil }
func (q *smallQueue) MaxMessageBytes() int                          { return q.limit }

var _ queue.Producer = (*smallQueue)(nil)

// TestProfileLargerThanTheQueueCarries: a profile that the queue could
// take but never forward (Kafka's message size limit behind the spool) is
// refused up front, named with the limit, and nothing is queued.
func TestProfileLargerThanTheQueueCarries(t *testing.T) {
	q := &smallQueue{limit: 1000}
	p := New(DefaultOptions(), q)
	mux := http.NewServeMux()
	p.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	heap := runtimePprof(t, "heap")
	if len(heap) <= 1000 {
		t.Fatalf("the heap profile has %d bytes; the test needs more than the limit", len(heap))
	}
	resp, err := http.Post(srv.URL+"/ingest?name=app", "", bytes.NewReader(heap))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), "message limit of 1000 bytes") {
		t.Errorf("POST /ingest: %s %s; want 413 naming the limit", resp.Status, msg)
	}
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, srv.URL)
	_, err = client.Push(context.Background(), connect.NewRequest(pushRequest(heap, "service_name", "app")))
	var ce *connect.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message(), "message limit of 1000 bytes") {
		t.Errorf("Push: %v; want an error naming the limit", err)
	}
	if q.published != 0 {
		t.Errorf("%d records queued; want none", q.published)
	}
	if v := testutil.ToFloat64(p.m.ingest.WithLabelValues("too_large")) + testutil.ToFloat64(p.m.push.WithLabelValues("too_large")); v != 2 {
		t.Errorf("too_large requests counted: %v; want 2", v)
	}
}
