package queue

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
)

// publisher is a Producer without PublishBatch that records the tenant
// of each Publish.
type publisher struct{ got []string }

func (p *publisher) Publish(ctx context.Context, key string, value []byte) error {
	p.got = append(p.got, auth.Tenant(ctx)+"/"+key+"="+string(value))
	return nil
}

// TestPublishBatchTenants: without PublishBatch, each record is published
// under its own tenant, or the context's; an invalid one fails the batch
// before anything is published.
func TestPublishBatchTenants(t *testing.T) {
	p := &publisher{}
	ctx := auth.WithTenant(context.Background(), "team-a")
	err := PublishBatch(ctx, p, []Record{
		{Key: "k", Value: []byte("1")},
		{Tenant: "team-b", Key: "k", Value: []byte("2")},
		{Tenant: auth.DefaultTenant, Key: "k", Value: []byte("3")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"team-a/k=1", "team-b/k=2", "default/k=3"}; !slices.Equal(p.got, want) {
		t.Fatalf("published %q; want %q", p.got, want)
	}
	p.got = nil
	err = PublishBatch(ctx, p, []Record{{Key: "k", Value: []byte("1")}, {Tenant: "no/slash", Key: "k"}})
	if !errors.Is(err, ErrInvalidTenant) || len(p.got) != 0 {
		t.Fatalf("PublishBatch with tenant \"no/slash\": got %v and %q published; want ErrInvalidTenant and nothing", err, p.got)
	}
}

func TestTenantOf(t *testing.T) {
	f := func(ctx context.Context, r Record, want string, wantErr bool) {
		t.Helper()
		got, err := TenantOf(ctx, r)
		if got != want || errors.Is(err, ErrInvalidTenant) != wantErr {
			t.Errorf("TenantOf(%q): got %q, %v; want %q (error: %v)", r.Tenant, got, err, want, wantErr)
		}
	}
	bg := context.Background()
	f(bg, Record{}, auth.DefaultTenant, false)
	f(auth.WithTenant(bg, "team-a"), Record{}, "team-a", false)
	f(auth.WithTenant(bg, "team-a"), Record{Tenant: "team-b"}, "team-b", false)
	f(bg, Record{Tenant: ".."}, "", true)
	f(auth.WithTenant(bg, "a b"), Record{}, "", true)
}
