//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go/ext"
	jaegerclient "github.com/uber/jaeger-client-go"
)

// TestLocalTenant: with --collector.local-tenant, the records that come
// without credentials — lines of a tailed file, spans from jaeger-client-go
// over the UDP agent port — are that tenant's: its key reads them, another
// tenant's key does not.
func TestLocalTenant(t *testing.T) {
	dir := t.TempDir()
	a, b := tenancyTenants()
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", tenancyAuthConfig(t, dir, "", a, b),
		"--collector.files", filepath.Join(logDir, "*.log"), "--collector.local-tenant", a.name)

	var lines strings.Builder
	for i := range 3 {
		fmt.Fprintf(&lines, "tailed line %d of %s\n", i, a.mark)
	}
	if err := os.WriteFile(filepath.Join(logDir, a.mark+".log"), []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	udp, err := jaegerclient.NewUDPTransport(p.jaegerCompact, 0)
	if err != nil {
		t.Fatal(err)
	}
	tracer, closer := jaegerclient.NewTracer(a.mark, jaegerclient.NewConstSampler(true), jaegerclient.NewRemoteReporter(udp))
	tracer.StartSpan("GET /local", ext.SpanKindRPCServer).Finish()
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}

	query := "/loki/api/v1/query_range?query=" + strings.ReplaceAll(fmt.Sprintf(`{service=%q}`, a.mark), `"`, "%22") +
		fmt.Sprintf("&start=%d&limit=100", time.Now().Add(-time.Hour).UnixNano())
	services := "/api/services"
	eventually(t, 30*time.Second, "the tailed lines and the UDP span read with "+a.name+"'s key", func() (bool, string) {
		_, logs, err := request(p.query, "GET", query, "", a.key)
		if err != nil {
			return false, err.Error()
		}
		_, svcs, err := request(p.query, "GET", services, "", a.key)
		if err != nil {
			return false, err.Error()
		}
		return strings.Count(logs, "tailed line") == 3 && strings.Contains(svcs, a.mark), logs + " " + svcs
	})
	for _, path := range []string{query, services} {
		if code, body, err := request(p.query, "GET", path, "", b.key); err != nil || code != 200 || strings.Contains(body, a.mark) {
			t.Errorf("%s with %s's key: %d %v %s; want 200 without %s's records", path, b.name, code, err, body, a.name)
		}
	}
}
