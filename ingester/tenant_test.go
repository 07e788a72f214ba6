package ingester

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
)

// sliceConsumer hands out fixed messages, then waits; it remembers the
// last commit.
type sliceConsumer struct {
	mu        sync.Mutex
	msgs      []queue.Message
	next      int
	committed int64
}

func (c *sliceConsumer) Fetch(ctx context.Context) (queue.Message, error) {
	c.mu.Lock()
	if c.next < len(c.msgs) {
		m := c.msgs[c.next]
		c.next++
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()
	<-ctx.Done()
	return queue.Message{}, ctx.Err()
}

func (c *sliceConsumer) Commit(_ context.Context, m queue.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.committed = m.Position
	return nil
}

// tenantStore remembers under which tenant each write came.
type tenantStore struct {
	mu     sync.Mutex
	writes []tenantWrite
	n      int
}

type tenantWrite struct {
	tenant string
	msgs   []string
}

func (s *tenantStore) Write(ctx context.Context, recs []model.LogRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := tenantWrite{tenant: auth.Tenant(ctx)}
	for _, r := range recs {
		w.msgs = append(w.msgs, r.Message)
	}
	s.writes = append(s.writes, w)
	s.n += len(recs)
	return nil
}

func (s *tenantStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestBatchesAreOneTenants checks that the ingester writes every record
// under the tenant of its queue message, never mixing two tenants in one
// write, and commits everything.
func TestBatchesAreOneTenants(t *testing.T) {
	tenants := []string{"team-a", "team-a", "team-b", "", "team-a", "team-b", "team-b"}
	c := &sliceConsumer{}
	for i, tenant := range tenants {
		recs := []model.LogRecord{
			{ID: model.RecordID{byte(i), 1}, Timestamp: int64(i) + 1, Service: "svc", Message: fmt.Sprintf("%s/%d/0", tenant, i)},
			{ID: model.RecordID{byte(i), 2}, Timestamp: int64(i) + 1, Service: "svc", Message: fmt.Sprintf("%s/%d/1", tenant, i)},
		}
		b, err := otlplogs.Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		c.msgs = append(c.msgs, queue.Message{Key: "svc", Value: b, Position: int64(i + 1), Tenant: tenant})
	}
	st := &tenantStore{}
	o := DefaultOptions()
	o.MaxBatchWait = 20 * time.Millisecond
	runFor(t, New(o, c, st, nil), func() bool { return st.count() == 2*len(tenants) })
	if st.count() != 2*len(tenants) {
		t.Fatalf("stored %d records; want %d", st.count(), 2*len(tenants))
	}
	for _, w := range st.writes {
		want := w.tenant
		if want == auth.DefaultTenant {
			want = ""
		}
		for _, m := range w.msgs {
			if got, _, _ := strings.Cut(m, "/"); got != want {
				t.Errorf("record %q written under tenant %q", m, w.tenant)
			}
		}
	}
	if len(st.writes) < 5 {
		t.Errorf("%d writes; want at least one per run of one tenant's messages (5)", len(st.writes))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.committed != int64(len(tenants)) {
		t.Errorf("committed position %d; want %d", c.committed, len(tenants))
	}
}
