//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/query/jaeger"
)

// TestJaegerQueryReadsVigilIndices holds Vigil to its promise that a stock
// jaeger-query pointed at the same Elasticsearch cluster and index prefix
// reads the spans Vigil's esspanstore writes: every trace, span, typed tag,
// process, log, reference, start time and duration, through jaeger-query's
// own HTTP API, the same as Vigil's Jaeger API over the same indices answers.
// It also checks the indices against the mapping Jaeger's own templates
// declare. jaeger-query is built by deploy/local/jaeger-query.sh.
func TestJaegerQueryReadsVigilIndices(t *testing.T) {
	esURL := requireES(t)
	jq := jaegerTool(t, "jaeger-query", "VIGIL_JAEGER_QUERY")
	ctx := context.Background()

	o := esspanstore.DefaultOptions()
	o.URLs = []string{esURL}
	o.IndexPrefix = fmt.Sprintf("vigil-jq-%08x", rand.Uint32())
	o.Replicas, o.Retention = 0, 0
	o.Logger = slog.New(slog.DiscardHandler)
	st, err := esspanstore.Open(ctx, o)
	if err != nil {
		t.Fatalf("esspanstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() { deleteJaegerIndices(t, esURL, o.IndexPrefix) })

	traces := jqTestTraces(time.Now().Add(-10 * time.Minute))
	var all []model.Span
	for _, tr := range traces {
		all = append(all, tr...)
	}
	if err := st.Write(ctx, all); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := st.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}

	api := jaeger.NewAPI(jaeger.Options{Logger: slog.New(slog.DiscardHandler)}, st)
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	vigil := httptest.NewServer(mux)
	t.Cleanup(vigil.Close)
	jaegerQ := startJaegerQuery(t, jq, esURL, o.IndexPrefix)
	// Both answer every question below the same way, unless said otherwise.
	readers := []struct{ name, base string }{{"jaeger-query", jaegerQ}, {"Vigil", vigil.URL}}

	t.Run("services", func(t *testing.T) {
		want := []string{"jq-backend", "jq-frontend", "jq-worker"}
		for _, r := range readers {
			var got []string
			getData(t, r.base+"/api/services", &got)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s /api/services: got %q; want %q", r.name, got, want)
			}
		}
	})

	t.Run("operations", func(t *testing.T) {
		for svc, want := range map[string][]string{
			"jq-frontend": {"GET /checkout"},
			"jq-backend":  {"charge card", "enqueue receipt"},
			"jq-worker":   {"send receipt"},
		} {
			for _, r := range readers {
				var got []string
				getData(t, r.base+"/api/services/"+url.PathEscape(svc)+"/operations", &got)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s /api/services/%s/operations: got %q; want %q", r.name, svc, got, want)
				}
			}
		}
		// Jaeger's Elasticsearch storage keeps no span kind with its
		// service/operation pairs: jaeger-query answers /api/operations with
		// spanKind "" and ignores the spanKind parameter, whoever wrote the
		// indices. Vigil's API reads the kinds from the spans.
		type op struct{ Name, SpanKind string }
		for svc, want := range map[string][]op{
			"jq-frontend": {{"GET /checkout", "server"}},
			"jq-backend":  {{"charge card", "client"}, {"enqueue receipt", "producer"}},
			"jq-worker":   {{"send receipt", "consumer"}},
		} {
			q := url.Values{"service": {svc}}.Encode()
			var got []op
			getData(t, jaegerQ+"/api/operations?"+q, &got)
			slices.SortFunc(got, func(a, b op) int { return strings.Compare(a.Name, b.Name) })
			names := slices.Clone(want)
			for i := range names {
				names[i].SpanKind = ""
			}
			if !slices.Equal(got, names) {
				t.Errorf("jaeger-query /api/operations?%s: got %v; want %v", q, got, names)
			}
			getData(t, vigil.URL+"/api/operations?"+q, &got)
			slices.SortFunc(got, func(a, b op) int { return strings.Compare(a.Name, b.Name) })
			if !slices.Equal(got, want) {
				t.Errorf("Vigil /api/operations?%s: got %v; want %v", q, got, want)
			}
		}
	})

	t.Run("traces by id", func(t *testing.T) {
		for _, tr := range traces {
			id := jaeger.TraceIDString(tr[0].TraceID)
			want := canonicalTrace(t, mustJSON(t, jaeger.ToJSON(tr)))
			for _, r := range readers {
				var got []json.RawMessage
				getData(t, r.base+"/api/traces/"+id, &got)
				if len(got) != 1 {
					t.Errorf("%s /api/traces/%s: got %d traces; want 1", r.name, id, len(got))
					continue
				}
				if c := canonicalTrace(t, got[0]); c != want {
					t.Errorf("%s /api/traces/%s differs from the spans written (- written, + read):\n%s", r.name, id, lineDiff(want, c))
				}
			}
		}
	})

	t.Run("search", func(t *testing.T) {
		root := traces[0][0]
		start := root.StartTime/1000 - 60_000_000
		end := time.Now().UnixMicro() + 60_000_000
		idA, idB := jaeger.TraceIDString(traces[0][0].TraceID), jaeger.TraceIDString(traces[1][0].TraceID)
		for _, c := range []struct {
			name string
			q    url.Values
			want []string
		}{
			{"service", url.Values{"service": {"jq-backend"}}, []string{idA, idB}},
			{"operation", url.Values{"service": {"jq-backend"}, "operation": {"enqueue receipt"}}, []string{idA}},
			{"string tag", url.Values{"service": {"jq-frontend"}, "tags": {`{"http.route":"/checkout"}`}}, []string{idA}},
			{"int64 tag", url.Values{"service": {"jq-frontend"}, "tags": {`{"http.status_code":"502"}`}}, []string{idB}},
			{"bool tag", url.Values{"service": {"jq-backend"}, "tags": {`{"retry":"true"}`}}, []string{idB}},
			{"float64 tag", url.Values{"service": {"jq-frontend"}, "tags": {`{"cart.value":"99.5"}`}}, []string{idA}},
			{"process tag", url.Values{"service": {"jq-backend"}, "tags": {`{"region":"eu-west"}`}}, []string{idA}},
			{"log field", url.Values{"service": {"jq-backend"}, "tags": {`{"card.brand":"visa"}`}}, []string{idA}},
			{"error", url.Values{"service": {"jq-backend"}, "tags": {`{"error":"true"}`}}, []string{idA}},
			{"span.kind", url.Values{"service": {"jq-backend"}, "tags": {`{"span.kind":"producer"}`}}, []string{idA}},
			{"two tags, one span", url.Values{"service": {"jq-frontend"}, "tags": {`{"http.status_code":"200","http.route":"/checkout"}`}}, []string{idA}},
			{"tags on two spans", url.Values{"service": {"jq-frontend"}, "tags": {`{"http.status_code":"200","retry":"true"}`}}, nil},
			{"min duration", url.Values{"service": {"jq-frontend"}, "minDuration": {"100ms"}}, []string{idA}},
			{"max duration", url.Values{"service": {"jq-frontend"}, "maxDuration": {"100ms"}}, []string{idB}},
			{"limit", url.Values{"service": {"jq-backend"}, "limit": {"1"}}, []string{idB}},
		} {
			c.q.Set("start", fmt.Sprint(start))
			c.q.Set("end", fmt.Sprint(end))
			if c.q.Get("limit") == "" {
				c.q.Set("limit", "20")
			}
			slices.Sort(c.want)
			for _, r := range readers {
				var got []struct{ TraceID string }
				getData(t, r.base+"/api/traces?"+c.q.Encode(), &got)
				ids := make([]string, 0, len(got))
				for _, tr := range got {
					ids = append(ids, tr.TraceID)
				}
				slices.Sort(ids)
				if !slices.Equal(ids, c.want) {
					t.Errorf("%s: %s /api/traces?%s: got %q; want %q", c.name, r.name, c.q.Encode(), ids, c.want)
				}
			}
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		// jaeger-query reads the daily documents of
		// <prefix>-jaeger-dependencies-*, which Jaeger's Spark job writes
		// and Vigil's store writes as spans arrive (Run, every
		// DependencyInterval; here directly): both APIs give the same calls.
		days := map[string]time.Time{}
		for _, tr := range traces {
			for _, sp := range tr {
				d := time.Unix(0, sp.StartTime).UTC()
				days[d.Format("2006-01-02")] = d
			}
		}
		for _, d := range days {
			if err := st.WriteDependencies(ctx, d); err != nil {
				t.Fatalf("WriteDependencies(%s): %v", d, err)
			}
		}
		if err := st.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		// Jaeger selects the daily documents by their midnight timestamp.
		q := url.Values{"endTs": {fmt.Sprint(time.Now().UnixMilli())}, "lookback": {fmt.Sprint((72 * time.Hour).Milliseconds())}}.Encode()
		type link struct {
			Parent, Child string
			CallCount     int
		}
		var fromJaeger, fromVigil []link
		getData(t, jaegerQ+"/api/dependencies?"+q, &fromJaeger)
		getData(t, vigil.URL+"/api/dependencies?"+q, &fromVigil)
		sum := func(links []link) map[[2]string]int {
			m := map[[2]string]int{}
			for _, l := range links {
				m[[2]string{l.Parent, l.Child}] += l.CallCount
			}
			return m
		}
		if len(fromVigil) == 0 || !reflect.DeepEqual(sum(fromJaeger), sum(fromVigil)) {
			t.Errorf("/api/dependencies: jaeger-query %v; Vigil %v; want the same calls, at least one", fromJaeger, fromVigil)
		}
	})

	t.Run("mapping", func(t *testing.T) {
		checkMappingAgainstJaeger(t, esURL, o.IndexPrefix, time.Unix(0, traces[0][0].StartTime))
	})
}

// jqTestTraces returns two traces over three services that use every tag
// type (span, process and log fields), both span id widths of trace ids, a
// FOLLOWS_FROM reference inside the trace and one to the other trace, a
// parent given only as ParentSpanID and one given as a reference too, an
// error span, and each span kind. Children lie within their parents, so
// jaeger-query's clock skew adjustment has nothing to do; times are whole
// µs (Jaeger's precision).
func jqTestTraces(base time.Time) [][]model.Span {
	t0 := base.Truncate(time.Millisecond).UnixNano()
	ms := int64(time.Millisecond)
	tidA := model.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	tidB := model.TraceID{8: 0x00, 9: 0x7a, 10: 0x11, 11: 0x22, 12: 0x33, 13: 0x44, 14: 0x55, 15: 0x66} // 64-bit, leading zero
	sid := func(n byte) model.SpanID { return model.SpanID{0x0a, 0, 0, 0, 0, 0, 0x10, n} }
	str := func(k, v string) model.TypedAttr { return model.TypedAttr{Key: k, Type: model.AttrString, Str: v} }
	i64 := func(k string, v int64) model.TypedAttr { return model.TypedAttr{Key: k, Type: model.AttrInt64, Int: v} }
	f64 := func(k string, v float64) model.TypedAttr {
		return model.TypedAttr{Key: k, Type: model.AttrFloat64, Float: v}
	}
	boolean := func(k string, v bool) model.TypedAttr {
		a := model.TypedAttr{Key: k, Type: model.AttrBool}
		if v {
			a.Int = 1
		}
		return a
	}
	bin := func(k, v string) model.TypedAttr { return model.TypedAttr{Key: k, Type: model.AttrBinary, Str: v} }
	front := []model.TypedAttr{str("region", "eu-west"), i64("pid", 4242), boolean("canary", true), f64("cpu.quota", 1.5), bin("build.id", "\x00\x01\xfe\xff")}

	root := model.Span{
		TraceID: tidA, SpanID: sid(1), Name: "GET /checkout", Kind: model.SpanKindServer, Flags: 1,
		StartTime: t0, Duration: 250 * ms, Service: "jq-frontend", Host: "web-1", Env: "prod", Grade: 2,
		StatusCode: 1,
		Attributes: []model.TypedAttr{
			str("http.route", "/checkout"), i64("http.status_code", 200), boolean("cache.hit", false), f64("cart.value", 99.5),
			bin("request.hash", "\xde\xad\xbe\xef"), i64("big.counter", math.MaxInt64), f64("ratio", 1.0/3), str("unicode", "żółw 🐢"),
		},
		Process: front,
		Events: []model.SpanEvent{
			{Time: t0 + 5*ms, Name: "cart loaded", Attributes: []model.TypedAttr{i64("items", 3), boolean("cached", true)}},
			{Time: t0 + 240*ms, Attributes: []model.TypedAttr{str("message", "an event without a name"), f64("took.ms", 0.25)}},
		},
	}
	charge := model.Span{
		TraceID: tidA, SpanID: sid(2), ParentSpanID: root.SpanID, Name: "charge card", Kind: model.SpanKindClient, Flags: 1,
		StartTime: t0 + 10*ms, Duration: 120 * ms, Service: "jq-backend", Host: "api-7",
		StatusCode: 2, StatusMessage: "card declined",
		Attributes: []model.TypedAttr{str("peer.service", "payments"), boolean("retry", false), i64("attempt", -1)},
		Process:    []model.TypedAttr{str("region", "eu-west"), i64("pid", 7)},
		Events: []model.SpanEvent{
			{Time: t0 + 129*ms, Name: "exception", Attributes: []model.TypedAttr{str("exception.type", "Declined"), str("card.brand", "visa")}},
		},
	}
	enqueue := model.Span{
		TraceID: tidA, SpanID: sid(3), ParentSpanID: root.SpanID, Name: "enqueue receipt", Kind: model.SpanKindProducer, Flags: 1,
		StartTime: t0 + 200*ms, Duration: 3 * ms, Service: "jq-backend", Host: "api-7",
		Process: []model.TypedAttr{str("region", "eu-west"), i64("pid", 7)},
		// The parent as a reference too: written once, not twice.
		References: []model.SpanRef{{Type: model.RefChildOf, TraceID: tidA, SpanID: root.SpanID}},
	}
	send := model.Span{
		TraceID: tidA, SpanID: sid(4), Name: "send receipt", Kind: model.SpanKindConsumer, Flags: 1,
		StartTime: t0 + 400*ms, Duration: 40 * ms, Service: "jq-worker", Env: "prod",
		Attributes: []model.TypedAttr{str("messaging.system", "kafka")},
		References: []model.SpanRef{{Type: model.RefFollowsFrom, TraceID: tidA, SpanID: enqueue.SpanID}},
	}

	b0 := t0 + 2*int64(time.Second)
	bRoot := model.Span{
		TraceID: tidB, SpanID: sid(5), Name: "GET /checkout", Kind: model.SpanKindServer, Flags: 1,
		StartTime: b0, Duration: 30 * ms, Service: "jq-frontend", Host: "web-1", Env: "prod", Grade: 2,
		Attributes: []model.TypedAttr{i64("http.status_code", 502), str("http.route", "/checkout/retry")},
		Process:    front,
		// A link to the first trace, as an OTLP span link arrives.
		References: []model.SpanRef{{Type: model.RefFollowsFrom, TraceID: tidA, SpanID: root.SpanID}},
	}
	bCharge := model.Span{
		TraceID: tidB, SpanID: sid(6), ParentSpanID: bRoot.SpanID, Name: "charge card", Kind: model.SpanKindClient,
		StartTime: b0 + ms, Duration: 20 * ms, Service: "jq-backend", Host: "api-8",
		Attributes: []model.TypedAttr{boolean("retry", true), i64("attempt", 2)},
		Process:    []model.TypedAttr{str("region", "us-east"), i64("pid", 8)},
	}
	return [][]model.Span{{root, charge, enqueue, send}, {bRoot, bCharge}}
}

// requireES returns VIGIL_TEST_ES; the test is skipped without it, or fails
// with VIGIL_REQUIRE_SERVICES=1.
func requireES(t *testing.T) string {
	t.Helper()
	u := os.Getenv("VIGIL_TEST_ES")
	if u == "" {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatal("VIGIL_TEST_ES is not set and VIGIL_REQUIRE_SERVICES=1 (make test starts Elasticsearch with deploy/local/services.sh)")
		}
		t.Skip("VIGIL_TEST_ES is not set")
	}
	return strings.TrimSuffix(u, "/")
}

// jaegerTool returns the path of a Jaeger binary built by
// deploy/local/jaeger-query.sh: $env, else the script's cached build. The
// test is skipped when there is none, or fails with
// VIGIL_REQUIRE_SERVICES=1.
func jaegerTool(t *testing.T, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return p
	}
	out, err := exec.Command("../deploy/local/jaeger-query.sh", "path", name).Output()
	if p := strings.TrimSpace(string(out)); err == nil && p != "" {
		return p
	}
	msg := fmt.Sprintf("%s is not built (%v): run deploy/local/jaeger-query.sh fetch, or set %s", name, err, env)
	if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startJaegerQuery runs jaeger-query on 127.0.0.1 over the ES indices of
// prefix, read-only, and returns its HTTP base URL; it is stopped when the
// test ends. The local Elasticsearch answers GET and HEAD / with 405, so
// the version is given and the client's health check is off.
func startJaegerQuery(t *testing.T, bin, esURL, prefix string) string {
	t.Helper()
	httpAddr, grpcAddr, adminAddr := freePort(t), freePort(t), freePort(t)
	var log bytes.Buffer
	jq := &childproc.Process{Binary: bin, Args: []string{
		"--es.server-urls=" + esURL, "--es.version=8", "--es.index-prefix=" + prefix,
		"--es.disable-health-check=true", "--es.sniffer=false", "--es.create-index-templates=false",
		"--query.http-server.host-port=" + httpAddr, "--query.grpc-server.host-port=" + grpcAddr,
		"--admin.http.host-port=" + adminAddr, "--log-level=warn"},
		Env:   append(os.Environ(), "SPAN_STORAGE_TYPE=elasticsearch"),
		Ready: httpAddr, ReadyPath: "/api/services", Stdout: &log, Stderr: &log}
	if err := jq.Start(); err != nil {
		t.Fatalf("jaeger-query %s: %v\n%s", bin, err, log.String())
	}
	t.Cleanup(func() {
		// Only that it stops is checked, not its exit status.
		if err := jq.Stop(15 * time.Second); err != nil && !errors.As(err, new(*exec.ExitError)) {
			t.Errorf("jaeger-query %v", err)
		}
		if t.Failed() {
			t.Logf("jaeger-query log:\n%s", log.String())
		}
	})
	return "http://" + httpAddr
}
