package spool

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
)

// tenantDownstream is a downstream with PublishBatch that records the
// tenant, key and value of each message it acknowledged.
type tenantDownstream struct {
	mu  sync.Mutex
	got []string // "tenant/key=value"
}

func (d *tenantDownstream) Publish(ctx context.Context, key string, value []byte) error {
	return errors.New("Publish called on a downstream with PublishBatch")
}

func (d *tenantDownstream) PublishBatch(ctx context.Context, records []queue.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range records {
		tenant, err := queue.TenantOf(ctx, r)
		if err != nil {
			return err
		}
		d.got = append(d.got, tenant+"/"+r.Key+"="+string(r.Value))
	}
	return nil
}

func (d *tenantDownstream) messages() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

// TestTenantsSurviveSpillAndReplay: batches spooled while the downstream
// is away, by several tenants under one key, are forwarded after a
// restart under the tenant each was published with; neighbours of one
// tenant are merged, neighbours of two tenants never.
func TestTenantsSurviveSpillAndReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := testOptions(dir, func(o *testConfig) { o.MaxCoalesce = 8 })
	// The downstream is down: nothing leaves the spool before the restart.
	s := mustOpen(t, cfg, &fakeDownstream{fail: alwaysFail})
	a := auth.WithTenant(context.Background(), "team-a")
	b := auth.WithTenant(context.Background(), "team-b")
	publish := func(ctx context.Context, value string) {
		t.Helper()
		if err := s.Publish(ctx, "svc", []byte(value)); err != nil {
			t.Fatalf("Publish(%q): %v", value, err)
		}
	}
	publish(a, "a0.")
	publish(b, "b0.")
	publish(a, "a1.")
	publish(a, "a2.")
	publish(context.Background(), "d0.")
	if err := s.PublishBatch(a, []queue.Record{
		{Key: "svc", Value: []byte("a3.")},
		{Tenant: "team-b", Key: "svc", Value: []byte("b1.")},
		{Tenant: "team-b", Key: "svc", Value: []byte("b2.")},
	}); err != nil {
		t.Fatal(err)
	}
	err := s.PublishBatch(a, []queue.Record{{Key: "svc", Value: []byte("x")}, {Tenant: "../b", Key: "svc", Value: []byte("y")}})
	if !errors.Is(err, queue.ErrInvalidTenant) {
		t.Fatalf("PublishBatch with tenant \"../b\": got %v; want queue.ErrInvalidTenant", err)
	}
	// Each batch of team-a and team-b takes as much as one of the other.
	const spooled = 8
	size := spooledSize(batch{"svc", "d0."}) + 7*tenantSpooledSize("team-a", batch{"svc", "a0."})
	checkBacklog(t, s, spooled, size)
	// Forwarding is refused: the batches stay spooled.
	stop := startRun(t, s)
	waitFor(t, "a refused round", func() bool { return metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError)) > 0 })
	stop()
	mustClose(t, s)

	down := &tenantDownstream{}
	s = mustOpen(t, cfg, down)
	defer mustClose(t, s)
	checkBacklog(t, s, spooled, size)
	startRun(t, s)
	waitFor(t, "empty backlog", func() bool { n, _ := s.backlog.snapshot(); return n == 0 })
	want := []string{
		"team-a/svc=a0.", "team-b/svc=b0.", "team-a/svc=a1.a2.", "default/svc=d0.",
		"team-a/svc=a3.", "team-b/svc=b1.b2.",
	}
	if got := down.messages(); !slices.Equal(got, want) {
		t.Fatalf("forwarded %q; want %q", got, want)
	}
}
