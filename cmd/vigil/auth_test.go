package main

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/internal/auth"
)

func TestRequiredScope(t *testing.T) {
	f := func(port, method, path string, want auth.Scope) {
		t.Helper()
		if got := requiredScope(port, httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("%s %s %s: got scope %q; want %q", port, method, path, got, want)
		}
	}
	const open, read, write, admin = auth.Open, auth.ScopeRead, auth.ScopeWrite, auth.ScopeAdmin
	for _, port := range []string{"collector", "zipkin", "jaeger-http", portDumps, portQuery, portFederation, portProfiler, "ingester"} {
		f(port, "GET", "/metrics", open)
		f(port, "GET", "/healthz", open)
		f(port, "GET", "/readyz", open)
		f(port, "GET", "/debug/pprof/heap", admin)
	}
	f("collector", "POST", "/loki/api/v1/push", write)
	f("collector", "POST", "/v1/traces", write)
	f("zipkin", "POST", "/api/v2/spans", write)
	f("jaeger-http", "POST", "/api/traces", write)
	f(portDumps, "POST", "/api/42/envelope/", open)
	f(portDumps, "POST", "/api/42/store/", open)
	f(portQuery, "GET", "/", open)
	f(portQuery, "GET", "/ui/app.js", open)
	f(portQuery, "GET", "/loki/api/v1/query_range", read)
	f(portQuery, "GET", "/loki/api/v1/tail", read)
	f(portQuery, "GET", auth.WhoAmIPath, read)
	f(portQuery, "GET", "/api/traces/abc", read)
	f(portQuery, "GET", "/api/v1/query", read)
	f(portQuery, "POST", "/api/v1/query", read)
	f(portQuery, "POST", "/api/v1/write", write)
	f(portQuery, "GET", "/vigil/api/v1/dumps/issues", read)
	f(portQuery, "PUT", "/vigil/api/v1/dumps/issues/1/status", admin)
	f(portQuery, "PUT", "/api/0/organizations/vigil/issues/1/", admin)
	f(portQuery, "GET", "/api/0/organizations/vigil/issues/", read)
	f(portFederation, "POST", "/api/v1/write", write)
	f(portFederation, "POST", "/api/v1/otlp/v1/metrics", write)
	f(portFederation, "GET", "/federate", read)
	f(portFederation, "POST", "/api/v1/admin/tsdb/delete_series", admin)
	f(portFederation, "POST", "/-/reload", admin)
	f(portProfiler, "POST", "/ingest", write)
	f(portProfiler, "POST", "/push.v1.PusherService/Push", write)
	f(portProfiler, "POST", "/querier.v1.QuerierService/SelectMergeStacktraces", read)
	f(portProfiler, "GET", "/", read) // the profiler port has no static UI at its root
}

func TestLoopbackUDP(t *testing.T) {
	f := func(addr, want, wantErr string) {
		t.Helper()
		got, err := loopbackUDP("--collector.jaeger.compact-listen", addr)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%q: got %q, %v; want an error with %q", addr, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("%q: got %q, %v; want %q", addr, got, err, want)
		}
	}
	f("", "", "")
	f(":6831", "127.0.0.1:6831", "")
	f("127.0.0.1:6831", "127.0.0.1:6831", "")
	f("[::1]:6831", "[::1]:6831", "")
	f("localhost:6831", "localhost:6831", "")
	f("0.0.0.0:6831", "", "may listen on loopback only (127.0.0.1:6831")
	f("10.0.0.5:6831", "", "set --collector.jaeger.compact-listen= to turn it off")
}

func TestLocalTenant(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(file, []byte("tenants:\n  team-a: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{File: file, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f := func(a *auth.Authenticator, tenant, wantErr string) {
		t.Helper()
		d := newDaemon(slog.New(slog.DiscardHandler))
		d.auth = a
		o := collector.DefaultOptions()
		o.LocalTenant = tenant
		err := d.authCollector(&o)
		if got := errString(err); (wantErr == "") != (err == nil) || !strings.Contains(got, wantErr) {
			t.Errorf("--collector.local-tenant %q: got %q; want %q", tenant, got, wantErr)
		}
	}
	f(nil, "", "")
	f(nil, "default", "")
	f(nil, "team-a", "tenants need --auth.config")
	f(a, "team-a", "")
	f(a, "team-b", `"team-b": not a tenant of --auth.config`)
	f(a, "../x", "not a valid tenant id")
}

// keyHash is the sha256 of a key as --auth.config takes it.
func keyHash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}
