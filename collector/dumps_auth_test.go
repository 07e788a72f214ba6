package collector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/auth"
)

// TestDumpsTenantKeys: with --auth.config the intake takes the tenants'
// sentry_keys, in the auth headers and in the envelope's DSN alike.
func TestDumpsTenantKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.yaml")
	conf := "tenants:\n  team-a:\n    sentry_keys:\n      - {key: akey, project: \"42\"}\n  team-b:\n    sentry_keys:\n      - {key: bkey}\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	o := keyed()
	o.Authenticator = a
	dc := newDumpsCollector(t, o, nil)
	ok := `{"message":"m"}`
	f := func(path string, body []byte, hdr []string, want int) {
		t.Helper()
		if r := dc.do(t, "POST", path, body, hdr...); r.code != want {
			t.Errorf("%s %v: got %d %s; want %d", path, hdr, r.code, r.body, want)
		}
	}
	f("/api/42/envelope/", envelope(`{}`, eventItem(ok)), sentryAuth("akey"), 200)
	f("/api/42/envelope/", envelope(`{"dsn":"http://akey@h/42"}`, eventItem(ok)), nil, 200)
	f("/api/7/store/", []byte(ok), sentryAuth("bkey"), 200)
	f("/api/7/envelope/", envelope(`{}`, eventItem(ok)), sentryAuth("akey"), 403) // bound to 42
	f("/api/42/envelope/", envelope(`{}`, eventItem(ok)), sentryAuth("unknown"), 401)
	f("/api/42/envelope/", envelope(`{"dsn":"http://unknown@h/42"}`, eventItem(ok)), nil, 401)
	f("/api/42/envelope/", envelope(`{}`, eventItem(ok)), nil, 401)
	if ds := dc.drain(t); len(ds) != 3 {
		t.Errorf("got %d dumps queued; want the 3 accepted", len(ds))
	}

	// The key's tenant is on the context of what reaches the queue.
	tp := &tenantProducer{}
	dc = newDumpsCollector(t, o, tp)
	f("/api/42/envelope/", envelope(`{"dsn":"http://akey@h/42"}`, eventItem(ok)), nil, 200)
	f("/api/7/store/", []byte(ok), sentryAuth("bkey"), 200)
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if strings.Join(tp.tenants, ",") != "team-a,team-b" {
		t.Errorf("got tenants %q on the published context; want team-a, team-b", tp.tenants)
	}
}

type tenantProducer struct {
	mu      sync.Mutex
	tenants []string
}

func (p *tenantProducer) Publish(ctx context.Context, _ string, _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tenants = append(p.tenants, auth.Tenant(ctx))
	return nil
}
