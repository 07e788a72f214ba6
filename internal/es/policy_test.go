package es

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// BenchmarkBulkPolicy is the cost the resilience wrappers add to one bulk
// call on the happy path: the store's policy (breaker, dynamic timeout,
// retry window) around a call that does nothing, against no policy.
func BenchmarkBulkPolicy(b *testing.B) {
	full, err := NewBulkPolicy(PolicyOptions{Name: "bench", MaxAttempts: 8, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	noop := func(context.Context) error { return nil }
	for _, bc := range []struct {
		name string
		p    resilience.Policy
	}{
		{"none", resilience.Policy{}},
		{"breaker", resilience.Policy{Breaker: full.Breaker}},
		{"breaker+timeout+window", full},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.p.Call(ctx, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBulkSend is one bulk request of 100 documents to a loopback
// server, with and without the store's policy.
func BenchmarkBulkSend(b *testing.B) {
	f := &estest.Fake{Bulk: func(_ int, ids []string, _ []byte) (int, string) { return 200, estest.AllCreated(len(ids)) }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := NewClient(ClientOptions{URLs: []string{srv.URL}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	full, err := NewBulkPolicy(PolicyOptions{Name: "bench", MaxAttempts: 8, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	docs := newDocs(100)
	idx := docs.all()
	done := func(int, ItemResult) error { return nil }
	for _, bc := range []struct {
		name string
		p    resilience.Policy
	}{{"none", resilience.Policy{}}, {"policy", full}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &BulkWriter{Client: c, Policy: bc.p}
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Send(context.Background(), idx, docs.body, done); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
