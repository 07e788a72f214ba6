package spool

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// TestKafkaTenants spools batches of three tenants under one key while
// Kafka cannot be reached (a producer to a closed port), restarts the
// spool with the real Kafka as its downstream, and reads the topic with
// the kafka package's consumer: every batch arrives under its tenant, and
// neighbours were merged only within a tenant.
func TestKafkaTenants(t *testing.T) {
	opts := kafkaOptions(t)
	opts.Partitions = 1
	dir := t.TempDir()
	cfg := testOptions(dir, func(o *testConfig) { o.MaxCoalesce = 8 })

	away := opts
	away.Brokers = []string{"127.0.0.1:1"}
	away.PublishTimeout = time.Second
	down, err := kafka.NewProducer(away)
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, cfg, down)
	stop := startRun(t, s)
	a := auth.WithTenant(context.Background(), "team-a")
	b := auth.WithTenant(context.Background(), "team-b")
	for _, p := range []struct {
		ctx   context.Context
		value string
	}{{a, "a0."}, {b, "b0."}, {a, "a1."}, {a, "a2."}, {context.Background(), "d0."}, {b, "b1."}} {
		if err := s.Publish(p.ctx, "svc", []byte(p.value)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a refused round", func() bool {
		return metricValue(t, s.m.forwardErrors.WithLabelValues(reasonTimeout))+metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError)) > 0
	})
	stop()
	mustClose(t, s)
	mustClose(t, down)

	up, err := kafka.NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, up)
	s = mustOpen(t, cfg, up)
	defer mustClose(t, s)
	startRun(t, s)

	c, err := kafka.NewConsumer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, c)
	want := []string{"team-a/svc=a0.", "team-b/svc=b0.", "team-a/svc=a1.a2.", "default/svc=d0.", "team-b/svc=b1."}
	var got []string
	for range want {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m, err := c.Fetch(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Fetch after %q: %v", got, err)
		}
		got = append(got, m.Tenant+"/"+m.Key+"="+string(m.Value))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Kafka holds %q; want %q", got, want)
	}
}
