package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func TestTenantIndexPrefix(t *testing.T) {
	if p := tenantIndexPrefix(auth.DefaultTenant); p != "" {
		t.Errorf("default tenant: prefix %q; want none (its indices keep their names)", p)
	}
	for tenant, want := range map[string]string{
		"team-a":   "tenant-team-a.",
		"Team_A.b": "tenant-_team___a_-b.",
		"0":        "tenant-0.",
	} {
		if got := tenantIndexPrefix(tenant); got != want {
			t.Errorf("tenantIndexPrefix(%q) = %q; want %q", tenant, got, want)
		}
	}
	// Names that would collide under a careless mapping: case, '.', '_'
	// and one tenant's name being another's plus a default index name.
	tenants := []string{"a", "A", "a.b", "a_b", "a-b", "a__b", "a_-b", "a.-b", "a-vigil-logs-x", "a.vigil-logs-x", "team-a", "Team-a", "team-a-jaeger-span-x"}
	for _, t1 := range tenants {
		p1 := tenantIndexPrefix(t1)
		if err := es.CheckIndexPrefix(p1 + "vigil-logs-"); err != nil {
			t.Errorf("tenant %q: %v", t1, err)
		}
		for _, t2 := range tenants {
			if t1 == t2 {
				continue
			}
			p2 := tenantIndexPrefix(t2)
			for _, name := range []string{"vigil-logs-", "-jaeger-span-", "-vigil-dumps-", "vigil-dump-issues"} {
				if strings.HasPrefix(p2+name+"2026.12.04", p1+name) {
					t.Errorf("tenant %q's pattern %s* matches tenant %q's index %s", t1, p1+name, t2, p2+name+"2026.12.04")
				}
			}
		}
	}
}

// TestTenantStoresKeepTenantsApart writes each tenant's logs, spans and
// profiles through the routed stores, on the embedded stores, and reads them
// back as each tenant.
func TestTenantStoresKeepTenantsApart(t *testing.T) {
	d := newDaemon(slog.New(slog.DiscardHandler))
	dir := t.TempDir()
	b := &backends{dataDir: dir}
	ctx := context.Background()
	ctxA := auth.WithTenant(ctx, "team-a")
	ctxB := auth.WithTenant(ctx, "team-b")
	now := time.Now().UnixNano()

	stores := openSignalStores(d, b)
	defer stores.Close()
	logs, spans := routedLogs{stores.logs}, routedSpans{stores.spans}
	rec, span := writeOneOfEach(t, ctxA, stores, now)
	selectAll := func(ctx context.Context) []string {
		var got []string
		err := logs.Select(ctx, storage.SelectParams{Start: now - int64(time.Hour), End: now + int64(time.Hour)}, func(r *storage.Row) bool {
			got = append(got, r.Message)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := selectAll(ctxA); len(got) != 1 || got[0] != rec.Message {
		t.Errorf("team-a reads %q; want its line", got)
	}
	if got := selectAll(ctxB); len(got) != 0 {
		t.Errorf("team-b reads %q; want nothing", got)
	}
	if got := selectAll(ctx); len(got) != 0 {
		t.Errorf("the default tenant reads %q; want nothing", got)
	}
	vals, err := logs.LabelValues(ctxB, "service", now-int64(time.Hour), now+int64(time.Hour), nil)
	if err != nil || len(vals) != 0 {
		t.Errorf("team-b's services: %q, %v; want none", vals, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tenants", "team-a", "logs")); err != nil {
		t.Errorf("team-a's log store is not in its own directory: %v", err)
	}

	if got, err := spans.GetTrace(ctxA, span.TraceID); err != nil || len(got) != 1 {
		t.Errorf("team-a's trace: %d spans, %v; want its span", len(got), err)
	}
	if got, err := spans.GetTrace(ctxB, span.TraceID); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Errorf("team-b reads team-a's trace: %d spans, %v; want not found", len(got), err)
	}
	if svcs, err := spans.Services(ctxB); err != nil || len(svcs) != 0 {
		t.Errorf("team-b's services: %q, %v; want none", svcs, err)
	}

	// A tenant id that could leave the data directory is refused.
	if err := logs.Write(auth.WithTenant(ctx, ".."), []model.LogRecord{rec}); err == nil {
		t.Error("tenant \"..\": written; want an error")
	}

	// The stores of every tenant export their metrics, apart.
	mfs, err := prometheus.Gatherers{d.reg, &d.tenantRegs}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == "team-a" && strings.HasPrefix(mf.GetName(), "vigil_logstore_") {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error(`no vigil_logstore_… metric with tenant="team-a" on /metrics`)
	}
}

// TestTenantStoresElasticsearch checks the same on Elasticsearch, and that
// a tenant's indices carry its prefix.
func TestTenantStoresElasticsearch(t *testing.T) {
	esURL := estest.URL(t)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := addESFlags(fs)
	run := fmt.Sprintf("t%08x", rand.Uint32())
	if err := fs.Parse([]string{"--es.urls=" + esURL, "--es.replicas=0", "--es.index-prefix=" + run + "-logs-",
		"--es.jaeger.index-prefix=" + run, "--es.dumps.index-prefix=" + run, "--es.profiles.index-prefix=" + run}); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(slog.New(slog.DiscardHandler))
	b := &backends{es: f}
	ctx := context.Background()
	tenantA := "Team.A-" + run
	ctxA := auth.WithTenant(ctx, tenantA)
	ctxB := auth.WithTenant(ctx, "team-b-"+run)
	now := time.Now().UnixNano()
	t.Cleanup(func() {
		for _, p := range []string{run + "*", tenantIndexPrefix(tenantA) + "*", "tenant-team-b-" + run + "*"} {
			req, _ := http.NewRequest(http.MethodDelete, esURL+"/"+p+"?expand_wildcards=all", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})

	stores := openSignalStores(d, b)
	defer stores.Close()
	logs, spans := routedLogs{stores.logs}, routedSpans{stores.spans}
	_, span := writeOneOfEach(t, ctxA, stores, now)
	// Make the writes searchable.
	resp, err := http.Post(esURL+"/"+tenantIndexPrefix(tenantA)+"*/_refresh", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	count := func(ctx context.Context) int {
		n := 0
		err := logs.Select(ctx, storage.SelectParams{Start: now - int64(time.Hour), End: now + int64(time.Hour)}, func(*storage.Row) bool { n++; return true })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(ctxA); n != 1 {
		t.Errorf("%s reads %d lines; want its 1", tenantA, n)
	}
	if n := count(ctxB); n != 0 {
		t.Errorf("team-b reads %d lines; want none", n)
	}
	if got, err := spans.GetTrace(ctxA, span.TraceID); err != nil || len(got) != 1 {
		t.Errorf("%s's trace: %d spans, %v; want its span", tenantA, len(got), err)
	}
	if got, err := spans.GetTrace(ctxB, span.TraceID); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Errorf("team-b reads the trace: %d spans, %v; want not found", len(got), err)
	}
	// The indices are named for the tenant.
	resp, err = http.Get(esURL + "/_cat/indices/" + tenantIndexPrefix(tenantA) + "*?h=index")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p := tenantIndexPrefix(tenantA)
	for _, want := range []string{p + run + "-logs-", p + run + "-jaeger-span-"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no index %s… among %s's indices:\n%s", want, tenantA, body)
		}
	}
}

// signalStores are the stores per tenant of every stored signal, as a
// daemon opens them with b.
type signalStores struct {
	logs     *tenantStores[logStore]
	spans    *tenantStores[spanStore]
	dumps    *tenantStores[dumpStore]
	profiles *tenantStores[profileStore]
}

func openSignalStores(d *daemon, b *backends) signalStores {
	return signalStores{
		logs:     signals[0].(*signalOf[logStore]).tenants(d, b),
		spans:    signals[1].(*signalOf[spanStore]).tenants(d, b),
		dumps:    signals[2].(*signalOf[dumpStore]).tenants(d, b),
		profiles: signals[3].(*signalOf[profileStore]).tenants(d, b),
	}
}

// Close closes every signal's stores.
func (s signalStores) Close() error {
	return errors.Join(s.logs.Close(), s.spans.Close(), s.dumps.Close(), s.profiles.Close())
}

// writeOneOfEach writes, as the tenant of ctx, a log line and a span of
// service svc-a at now, and returns them.
func writeOneOfEach(t testing.TB, ctx context.Context, s signalStores, now int64) (model.LogRecord, model.Span) {
	t.Helper()
	rec := model.LogRecord{ID: model.RecordID{1}, Timestamp: now, ObservedTimestamp: now, Service: "svc-a", Message: "only for team-a"}
	if err := (routedLogs{s.logs}).Write(ctx, []model.LogRecord{rec}); err != nil {
		t.Fatal(err)
	}
	span := model.Span{TraceID: model.TraceID{1, 2, 3}, SpanID: model.SpanID{4}, Name: "op", StartTime: now, Duration: 1000, Service: "svc-a"}
	if err := (routedSpans{s.spans}).Write(ctx, []model.Span{span}); err != nil {
		t.Fatal(err)
	}
	return rec, span
}
