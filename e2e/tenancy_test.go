//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	sentrygo "github.com/getsentry/sentry-go"
	"github.com/google/pprof/profile"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tenant is one tenant of the tenancy tests: its key (write and read), its
// Sentry DSN key, the marker every one of its records carries (service
// name, label name, function name, message), and the ids of what it wrote.
type tenant struct {
	name, key, dsn, project string
	mark                    string
	// Written: the trace of its spans, the event of its dump.
	traceID, eventID string
	// Read back with its own key: its dump's issue, its profile.
	issueID, profileID string
	// lines is the number of log lines it wrote.
	lines int
	// dumpsWebhook, when set, is its dumps_webhook_url.
	dumpsWebhook string
}

// tenancyTenants returns team-a and team-b with markers unique to the run
// (valid as service names, Prometheus label names and pprof function
// names; neither a substring of the other).
func tenancyTenants() (a, b *tenant) {
	run := time.Now().UnixNano() % 1e9
	a = &tenant{name: "team-a", key: "team-a-rw-3b9d0c7e51f2a8", dsn: "a1b2c3d4e5f60718293a4b5c6d7e8f90", project: "11",
		mark: fmt.Sprintf("svc_a_%d", run), lines: 4}
	b = &tenant{name: "team-b", key: "team-b-rw-8e4a6f1d09c3b7", dsn: "b2c3d4e5f60718293a4b5c6d7e8f90a1", project: "22",
		mark: fmt.Sprintf("svc_b_%d", run), lines: 3}
	return a, b
}

// tenancyAuthConfig writes the --auth.config of the tenants; trusted, when
// not empty, is the CIDR of trusted_proxies (Vigil's own daemons, which
// pass the tenant on as X-Scope-OrgID).
func tenancyAuthConfig(t *testing.T, dir, trusted string, tenants ...*tenant) string {
	var b strings.Builder
	if trusted != "" {
		fmt.Fprintf(&b, "trusted_proxies:\n  cidrs: [%s]\n", trusted)
	}
	b.WriteString("tenants:\n")
	for _, tn := range tenants {
		fmt.Fprintf(&b, "  %s:\n    keys:\n      - sha256: %q\n        scopes: [write, read]\n    sentry_keys:\n      - key: %s\n        project: %q\n",
			tn.name, sha(tn.key), tn.dsn, tn.project)
		if tn.dumpsWebhook != "" {
			fmt.Fprintf(&b, "    dumps_webhook_url: %s\n", tn.dumpsWebhook)
		}
	}
	conf := filepath.Join(dir, "auth.yaml")
	writeFile(t, conf, b.String())
	return conf
}

// TestTenancyAllInOne: with --auth.config, two tenants write every signal
// into one all-in-one (embedded stores) with their own keys; every read
// API, on every port that serves it, shows each tenant its own data and
// none of the other's, and refuses a request without a key.
func TestTenancyAllInOne(t *testing.T) {
	dir := t.TempDir()
	a, b := tenancyTenants()
	hooks := newTenantWebhooks(t, a)
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", tenancyAuthConfig(t, dir, "", a, b), "--dumps.webhook-url", hooks.operatorURL)
	for _, tn := range []*tenant{a, b} {
		writeTenant(t, p, tn)
	}
	findOwnIDs(t, p.query, a)
	checkTenancy(t, a, b, tenancyAPIs(a, b, tenancyAddrs{
		query: p.query, prom: []string{p.query, p.federation}, federate: []string{p.query, p.federation},
		profiles: []string{p.query, p.profiler}, spanMetrics: []string{p.query}}))
	checkReconcileTenants(t, p.dataDir(), p.query, false, a, b)
	hooks.check(t, a, b)
}

// TestTenancyDistributed: the same with collector, ingester, query,
// profiler and federation as processes of their own, on real Kafka and
// Elasticsearch: the tenant travels with each record through Kafka to the
// ingester's per-tenant stores; the collector forwards the tenants' OTLP
// metrics to the federation; vigil query and the profiler read
// Elasticsearch, the query daemon the federation's Prometheus API.
func TestTenancyDistributed(t *testing.T) {
	kafkaAddr, esURL := services(t)
	run := fmt.Sprintf("e2etenancy%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	a, b := tenancyTenants()
	hooks := newTenantWebhooks(t, a)
	// The collector forwards OTLP metrics, and vigil query the Prometheus
	// API, to the federation with the tenant in X-Scope-OrgID: the
	// federation believes it from loopback. A request with no key and no
	// X-Scope-OrgID is still refused.
	conf := tenancyAuthConfig(t, dir, "127.0.0.1/32", a, b)
	auth := []string{"--auth.config", conf, "--log.level", "warn"}
	kafkaArgs := append([]string{"--kafka.brokers", kafkaAddr, "--kafka.topic", "vigil.logs." + run, "--kafka.spans-topic", "vigil.spans." + run,
		"--kafka.group", "g-" + run}, runDumpsTopics(run)...)
	esArgs := []string{"--es.urls", esURL, "--es.index-prefix", "vigil-" + run + "-", "--es.jaeger.index-prefix", run,
		"--es.dumps.index-prefix", run, "--es.profiles.index-prefix", run, "--es.replicas", "0"}
	t.Cleanup(func() {
		// The run's indices and index templates, whatever tenant prefix
		// they carry.
		for _, path := range []string{"*" + run + "*", "_index_template/*" + run + "*"} {
			if req, err := http.NewRequest(http.MethodDelete, esURL+"/"+path, nil); err == nil {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	collectorAddr, ingAddr, queryAddr, profAddr, fedAddr := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	p := &proc{t: t, collector: collectorAddr, query: queryAddr, profiler: profAddr, federation: fedAddr}
	startDaemon(t, fedAddr, append([]string{"federation", "--data-dir", filepath.Join(dir, "f"), "--federation.listen", fedAddr}, auth...)...)
	startDaemon(t, collectorAddr, append(append(append([]string{"collector", "--data-dir", filepath.Join(dir, "c"),
		"--collector.http.listen", collectorAddr, "--collector.metrics-url", "http://" + fedAddr + "/api/v1/otlp/v1/metrics"},
		auth...), kafkaArgs...), p.receiverArgs()...)...)
	startDaemon(t, ingAddr, append(append(append([]string{"ingester", "--data-dir", filepath.Join(dir, "i"),
		"--ingester.listen", ingAddr, "--dumps.webhook-url", hooks.operatorURL}, auth...), kafkaArgs...), esArgs...)...)
	startDaemon(t, profAddr, append(append(append([]string{"profiler", "--data-dir", filepath.Join(dir, "p"),
		"--profiler.listen", profAddr}, auth...), kafkaArgs...), esArgs...)...)
	startDaemon(t, queryAddr, append(append([]string{"query", "--query.listen", queryAddr, "--query.metrics-url", "http://" + fedAddr},
		auth...), esArgs...)...)
	for _, tn := range []*tenant{a, b} {
		writeTenant(t, p, tn)
	}
	findOwnIDs(t, queryAddr, a)
	checkTenancy(t, a, b, tenancyAPIs(a, b, tenancyAddrs{
		query: queryAddr, prom: []string{fedAddr, queryAddr}, federate: []string{fedAddr},
		profiles: []string{queryAddr, profAddr}}))
	checkReconcileTenants(t, filepath.Join(dir, "c"), queryAddr, true, a, b)
	hooks.check(t, a, b)
}

// writeTenant writes every signal of tn with its own credentials, each
// record carrying tn.mark: log lines through the logs API (Bearer) and
// Loki push (basic auth, as Promtail and Grafana send), a trace of two
// services through the OpenTelemetry SDK (OTLP/HTTP), a counter through
// the OpenTelemetry metrics SDK, a dump through sentry-go with tn's DSN
// and a CPU profile through Pyroscope's /ingest. Every write must be
// acknowledged.
func writeTenant(t *testing.T, p *proc, tn *tenant) {
	t.Helper()
	bearer := "Bearer " + tn.key
	// Logs: the lines are logfmt, so that detected fields and patterns
	// carry the marker too. team-a's streams have env and host, team-b's
	// a grade: label listings differ by name.
	streamLabels := `"env":%[1]q,"host":%[1]q`
	if tn.name == "team-b" {
		streamLabels = `"grade":2`
	}
	var body strings.Builder
	for i := 1; i < tn.lines; i++ {
		fmt.Fprintf(&body, `{"service":%[1]q,"level":"info",`+streamLabels+`,"message":"msg=hello user=%[1]s %[1]s=yes n=%[2]d"}`+"\n", tn.mark, i)
	}
	if code, resp := p.post("/api/v1/logs", "application/x-ndjson", []byte(body.String()), "Authorization", bearer); code != 200 {
		t.Fatalf("%s: logs API: %d %s", tn.name, code, resp)
	}
	push := fmt.Sprintf(`{"streams":[{"stream":{"service_name":%q,"level":"info"},"values":[["%d","msg=hello user=%s %s=yes n=%d"]]}]}`,
		tn.mark, time.Now().UnixNano(), tn.mark, tn.mark, tn.lines)
	req, _ := http.NewRequest("POST", "http://"+p.collector+"/loki/api/v1/push", strings.NewReader(push))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(tn.name, tn.key)
	if code, resp := do(t, req); code != 204 {
		t.Fatalf("%s: Loki push: %d %s", tn.name, code, resp)
	}

	// Spans: service <mark> calls <mark>_db, so dependencies carry the
	// marker as well as services, operations and traces.
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(p.collector), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": bearer}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	provider := func(service string) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
			sdktrace.WithSpanProcessor(rec), sdktrace.WithSyncer(exp))
	}
	front, db := provider(tn.mark), provider(tn.mark+"_db")
	rctx, root := front.Tracer("e2e").Start(ctx, "pay "+tn.mark, trace.WithSpanKind(trace.SpanKindServer))
	_, call := front.Tracer("e2e").Start(rctx, "query "+tn.mark, trace.WithSpanKind(trace.SpanKindClient))
	cctx := trace.ContextWithSpan(ctx, call)
	_, served := db.Tracer("e2e").Start(cctx, "select "+tn.mark, trace.WithSpanKind(trace.SpanKindServer))
	served.End()
	call.End()
	root.End()
	for _, tp := range []*sdktrace.TracerProvider{db, front} {
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatalf("%s: OTLP/HTTP spans: %v", tn.name, err)
		}
	}
	_ = front.Shutdown(ctx)
	_ = db.Shutdown(ctx)
	if n := len(rec.Ended()); n != 3 {
		t.Fatalf("%s: %d spans ended; want 3", tn.name, n)
	}
	tn.traceID = root.SpanContext().TraceID().String()

	// Metrics: counter <mark>_orders of job <mark> with a label named
	// <mark>, through the collector's OTLP/HTTP receiver.
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(p.collector), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": bearer}),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", tn.mark))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
	orders, err := mp.Meter("e2e").Int64Counter(tn.mark + "_orders")
	if err != nil {
		t.Fatal(err)
	}
	orders.Add(ctx, 3, otelmetric.WithAttributes(attribute.String(tn.mark, "yes")))
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("%s: OTLP/HTTP metrics: %v", tn.name, err)
	}
	_ = mp.Shutdown(ctx)

	// A dump, through sentry-go with the tenant's DSN.
	rt := &statusRecorder{rt: &http.Transport{}}
	client, err := sentrygo.NewClient(sentrygo.ClientOptions{Dsn: "http://" + tn.dsn + "@" + p.dumps + "/" + tn.project,
		HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	hub := sentrygo.NewHub(client, sentrygo.NewScope())
	hub.Scope().SetTag("service", tn.mark)
	hub.Scope().SetTag(tn.mark, "yes")
	id := hub.CaptureException(errors.New("checkout failed for " + tn.mark))
	if !client.Flush(20*time.Second) || id == nil {
		t.Fatalf("%s: sentry-go did not deliver its event", tn.name)
	}
	client.Close()
	if got := rt.all(); len(got) != 1 || got[0] != 200 {
		t.Fatalf("%s: sentry-go: intake statuses %v; want [200]", tn.name, got)
	}
	tn.eventID = string(*id)

	// A CPU profile whose functions are named after the marker, with a
	// label named after it, through Pyroscope's ingest API.
	u := "http://" + p.profiler + "/ingest?" + url.Values{"name": {tn.mark + ".cpu{" + tn.mark + "=yes}"},
		"from": {fmt.Sprint(time.Now().Add(-5 * time.Second).Unix())}, "format": {"pprof"}}.Encode()
	req, _ = http.NewRequest("POST", u, bytes.NewReader(tenancyProfile(t, tn.mark)))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", bearer)
	if code, resp := do(t, req); code != 200 {
		t.Fatalf("%s: POST /ingest: %d %s", tn.name, code, resp)
	}
}

// tenancyProfile is a CPU profile of two stacks, main.main →
// <mark>.checkout → <mark>.charge and main.main → <mark>.checkout.
func tenancyProfile(t *testing.T, mark string) []byte {
	t.Helper()
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: mark + "/checkout.go"}
	}
	fMain, fCheckout, fCharge := fn(1, "main.main"), fn(2, mark+".checkout"), fn(3, mark+".charge")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Address: 0x1000 * id, Line: []profile.Line{{Function: f, Line: int64(10 * id)}}}
	}
	lMain, lCheckout, lCharge := loc(1, fMain), loc(2, fCheckout), loc(3, fCharge)
	const period = int64(10 * time.Millisecond)
	pr := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: period,
		TimeNanos: time.Now().Add(-5 * time.Second).UnixNano(), DurationNanos: int64(5 * time.Second),
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lCharge, lCheckout, lMain}, Value: []int64{30, 30 * period}},
			{Location: []*profile.Location{lCheckout, lMain}, Value: []int64{10, 10 * period}},
		},
		Location: []*profile.Location{lMain, lCheckout, lCharge},
		Function: []*profile.Function{fMain, fCheckout, fCharge},
	}
	var b bytes.Buffer
	if err := pr.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// do sends req and returns its status and body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fetcher asks one read API with a key ("" for none) and returns the
// status and the answer as text: pprof answers are decoded to pprof's
// text form, which names every function.
type fetcher func(key string) (int, string, error)

// tenancyAPI is one read API of one port: what team-a's key must find in
// its answer and team-b's must not (a), and the reverse (b). b empty: the
// API names one of team-a's own records (a trace, an issue, a profile
// id, a service), which team-b's key must not see (answered 200 or 404).
type tenancyAPI struct {
	name  string
	fetch fetcher
	a, b  string
}

// tenancyAddrs are the ports serving each group of read APIs.
type tenancyAddrs struct {
	query    string   // Loki, Jaeger, dumps and Sentry's API
	prom     []string // Prometheus' API
	federate []string // /federate
	profiles []string // the pprof API, its web UI and Pyroscope's querier
	// spanMetrics are the Prometheus APIs whose TSDB holds the golden
	// metrics the ingester derives from spans (all-in-one's).
	spanMetrics []string
}

// get is a GET of path on addr.
func get(addr, path string) fetcher {
	return func(key string) (int, string, error) { return request(addr, "GET", path, "", key) }
}

// connectCall is a call of Pyroscope's querier with a JSON body.
func connectCall(addr, method, body string) fetcher {
	return func(key string) (int, string, error) {
		return request(addr, "POST", "/querier.v1.QuerierService/"+method, body, key)
	}
}

func request(addr, method, path, body, key string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if resp.StatusCode == 200 && len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		pr, err := profile.Parse(bytes.NewReader(b))
		if err != nil {
			return resp.StatusCode, "", fmt.Errorf("%s: not a pprof: %v", path, err)
		}
		return resp.StatusCode, pr.String(), nil
	}
	return resp.StatusCode, string(b), nil
}

// tail opens Loki's live tail of query with the key and returns its first
// message: the newest lines before it opened.
func tail(addr, query string) fetcher {
	return func(key string) (int, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{}
		if key != "" {
			h.Set("Authorization", "Bearer "+key)
		}
		u := "ws://" + addr + "/loki/api/v1/tail?" + url.Values{"query": {query}, "delay_for": {"0"}, "limit": {"100"},
			"start": {fmt.Sprint(time.Now().Add(-time.Hour).UnixNano())}}.Encode()
		c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			if resp != nil {
				return resp.StatusCode, err.Error(), nil
			}
			return 0, "", err
		}
		defer c.CloseNow()
		_, msg, err := c.Read(ctx)
		if err != nil {
			return 0, "", fmt.Errorf("tail: %v", err)
		}
		return 200, string(msg), nil
	}
}

// pprofUITop opens pprof's web UI on query as team-a does (the first
// request freezes the selection into an address of its own) and asks that
// address' top view with the key: the view must be of the asker's own
// profiles whoever opened the address first.
func pprofUITop(addr, query string, a *tenant) fetcher {
	return func(key string) (int, string, error) {
		u := "http://" + addr + "/vigil/ui/pprof/?" + url.Values{"query": {query},
			"start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}.Encode()
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+a.key)
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Do(req)
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return resp.StatusCode, "", fmt.Errorf("pprof UI: %s without a redirect: %v", resp.Status, err)
		}
		return request(addr, "GET", loc.Path+"top", "", key)
	}
}

// tenancyAPIs lists every read API of every signal on every port that
// serves it, each on one line.
func tenancyAPIs(a, b *tenant, addrs tenancyAddrs) []tenancyAPI {
	now := time.Now()
	q := addrs.query
	enc := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const sel, metric = `{service=~"svc_.+"}`, `sum by (service) (count_over_time({service=~"svc_.+"}[1h]))`
	rng := func(kv ...string) string {
		return enc(append(kv, "start", fmt.Sprint(now.Add(-time.Hour).UnixNano()), "end", fmt.Sprint(now.Add(time.Hour).UnixNano()))...)
	}
	lookback := fmt.Sprintf("endTs=%d&lookback=%d", now.Add(time.Minute).UnixMilli(), (2 * time.Hour).Milliseconds())
	v3range := enc("query.start_time_min", now.Add(-time.Hour).Format(time.RFC3339), "query.start_time_max", now.Add(time.Hour).Format(time.RFC3339))
	apis := []tenancyAPI{
		// Loki.
		{"loki query_range", get(q, "/loki/api/v1/query_range?"+rng("query", sel, "limit", "100")), a.mark, b.mark},
		{"loki query (metric)", get(q, "/loki/api/v1/query?"+enc("query", metric)), a.mark, b.mark},
		{"loki query_range (metric)", get(q, "/loki/api/v1/query_range?"+rng("query", metric, "step", "60")), a.mark, b.mark},
		{"loki labels", get(q, "/loki/api/v1/labels?"+rng()), `"env"`, `"grade"`},
		{"loki label values", get(q, "/loki/api/v1/label/service/values?"+rng()), a.mark, b.mark},
		{"loki series", get(q, "/loki/api/v1/series?"+rng("match[]", sel)), a.mark, b.mark},
		{"loki index/stats", get(q, "/loki/api/v1/index/stats?"+rng("query", sel)), fmt.Sprintf(`"entries":%d`, a.lines), fmt.Sprintf(`"entries":%d`, b.lines)},
		{"loki index/volume", get(q, "/loki/api/v1/index/volume?"+rng("query", sel)), a.mark, b.mark},
		{"loki index/volume_range", get(q, "/loki/api/v1/index/volume_range?"+rng("query", sel, "step", "60")), a.mark, b.mark},
		{"loki detected_labels", get(q, "/loki/api/v1/detected_labels?"+rng("query", sel)), `"env"`, `"grade"`},
		{"loki detected_fields", get(q, "/loki/api/v1/detected_fields?"+rng("query", sel)), a.mark, b.mark},
		{"loki detected_field values", get(q, "/loki/api/v1/detected_field/user/values?"+rng("query", sel)), a.mark, b.mark},
		{"loki patterns (stored)", get(q, "/loki/api/v1/patterns?"+rng("query", sel, "step", "60")), a.mark, b.mark},
		{"loki patterns (mined)", get(q, "/loki/api/v1/patterns?"+rng("query", sel+` |= "msg=hello"`, "step", "60")), a.mark, b.mark},
		{"loki tail", tail(q, sel), a.mark, b.mark},
		// Jaeger v1.
		{"jaeger services", get(q, "/api/services"), a.mark, b.mark},
		{"jaeger service operations", get(q, "/api/services/"+a.mark+"/operations"), a.mark, ""},
		{"jaeger operations", get(q, "/api/operations?"+enc("service", a.mark)), a.mark, ""},
		{"jaeger trace search", get(q, "/api/traces?"+enc("service", a.mark, "lookback", "1h", "limit", "20")), a.mark, ""},
		{"jaeger traces by id", get(q, "/api/traces?"+enc("traceID", a.traceID)), a.mark, ""},
		{"jaeger trace by id", get(q, "/api/traces/"+a.traceID), a.mark, ""},
		{"jaeger dependencies", get(q, "/api/dependencies?"+lookback), a.mark, b.mark},
		// Jaeger v3.
		{"jaeger v3 services", get(q, "/api/v3/services"), a.mark, b.mark},
		{"jaeger v3 operations", get(q, "/api/v3/operations?"+enc("service", a.mark)), a.mark, ""},
		{"jaeger v3 trace search", get(q, "/api/v3/traces?"+enc("query.service_name", a.mark)+"&"+v3range), a.mark, ""},
		{"jaeger v3 trace by id", get(q, "/api/v3/traces/"+a.traceID), a.mark, ""},
		// Dumps: Vigil's API and Sentry's.
		{"dumps issues", get(q, "/vigil/api/v1/dumps/issues?statsPeriod=24h"), a.mark, b.mark},
		{"dumps issue", get(q, "/vigil/api/v1/dumps/issues/"+a.issueID), a.mark, ""},
		{"dumps event", get(q, "/vigil/api/v1/dumps/events/"+a.eventID), a.mark, ""},
		{"sentry issues", get(q, "/api/0/organizations/vigil/issues/?statsPeriod=24h"), a.mark, b.mark},
		{"sentry projects", get(q, "/api/0/organizations/vigil/projects/"), a.mark, b.mark},
		{"sentry team projects", get(q, "/api/0/teams/vigil/vigil/projects/"), a.mark, b.mark},
		{"sentry tags", get(q, "/api/0/organizations/vigil/tags/?statsPeriod=24h"), a.mark, b.mark},
		{"sentry events", get(q, "/api/0/organizations/vigil/events/?"+enc("field", "title", "field", "project", "statsPeriod", "24h")), a.mark, b.mark},
		{"sentry events of an issue", get(q, "/api/0/organizations/vigil/events/?"+enc("field", "title", "query", "issue:"+a.issueID, "statsPeriod", "24h")), a.mark, ""},
		{"sentry events-stats", get(q, "/api/0/organizations/vigil/events-stats/?"+enc("field", "project", "yAxis", "count()", "topEvents", "5", "statsPeriod", "1h", "interval", "5m")), a.mark, b.mark},
	}
	for _, f := range addrs.prom {
		promRange := enc("start", fmt.Sprint(now.Add(-10*time.Minute).Unix()), "end", fmt.Sprint(now.Add(time.Minute).Unix()))
		apis = append(apis, []tenancyAPI{
			{"prometheus query on " + f, get(f, "/api/v1/query?"+enc("query", `{job=~"svc_.+"}`)), a.mark, b.mark},
			{"prometheus query_range on " + f, get(f, "/api/v1/query_range?"+enc("query", `{job=~"svc_.+"}`, "step", "15")+"&"+promRange), a.mark, b.mark},
			{"prometheus series on " + f, get(f, "/api/v1/series?"+enc("match[]", `{job=~"svc_.+"}`)+"&"+promRange), a.mark, b.mark},
			{"prometheus labels on " + f, get(f, "/api/v1/labels?"+promRange), a.mark, b.mark},
			{"prometheus label values on " + f, get(f, "/api/v1/label/job/values?"+promRange), a.mark, b.mark},
			{"prometheus metric names on " + f, get(f, "/api/v1/label/__name__/values?"+promRange), a.mark, b.mark},
		}...)
	}
	for _, f := range addrs.spanMetrics {
		apis = append(apis, tenancyAPI{"span metrics on " + f, get(f, "/api/v1/query?"+enc("query", `traces_span_metrics_calls_total{service_name=~"svc_.+"}`)), a.mark, b.mark})
	}
	for _, f := range addrs.federate {
		apis = append(apis, tenancyAPI{"/federate on " + f, get(f, "/federate?"+enc("match[]", `{job=~"svc_.+"}`)), a.mark, b.mark})
	}
	for _, pa := range addrs.profiles {
		pr := func(path string, kv ...string) fetcher {
			return get(pa, "/vigil/api/v1/profiles/"+path+"?"+enc(append(kv,
				"start", fmt.Sprint(now.Add(-time.Hour).Unix()), "end", fmt.Sprint(now.Add(time.Minute).Unix()))...))
		}
		ms := fmt.Sprintf(`"start":%d,"end":%d`, now.Add(-time.Hour).UnixMilli(), now.Add(time.Minute).UnixMilli())
		const cpu = `"profileTypeID":"cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":"{}"`
		apis = append(apis, []tenancyAPI{
			{"pprof merge on " + pa, pr("merge", "query", "cpu{}"), a.mark, b.mark},
			{"pprof diff on " + pa, pr("diff", "query", "cpu{}", "base_query", `cpu{service="none"}`), a.mark, b.mark},
			{"pprof top on " + pa, pr("top", "query", "cpu{}"), a.mark, b.mark},
			{"pprof labels on " + pa, pr("labels", "query", "{}"), a.mark, b.mark},
			{"pprof label values on " + pa, pr("label/service/values", "query", "{}"), a.mark, b.mark},
			{"pprof series on " + pa, pr("series", "query", "{}"), a.mark, b.mark},
			{"pprof list on " + pa, pr("list", "query", "{}"), a.mark, b.mark},
			{"pprof profile by id on " + pa, pr("profile/" + a.profileID), a.mark, ""},
			{"pprof web UI on " + pa, pprofUITop(pa, "cpu{}", a), a.mark, b.mark},
			{"querier LabelNames on " + pa, connectCall(pa, "LabelNames", "{"+ms+"}"), a.mark, b.mark},
			{"querier LabelValues on " + pa, connectCall(pa, "LabelValues", `{"name":"service_name",`+ms+"}"), a.mark, b.mark},
			{"querier Series on " + pa, connectCall(pa, "Series", `{"matchers":["{}"],`+ms+"}"), a.mark, b.mark},
			{"querier SelectMergeStacktraces on " + pa, connectCall(pa, "SelectMergeStacktraces", "{"+cpu+","+ms+"}"), a.mark, b.mark},
			{"querier SelectMergeProfile on " + pa, connectCall(pa, "SelectMergeProfile", "{"+cpu+","+ms+"}"), a.mark, b.mark},
			{"querier SelectSeries on " + pa, connectCall(pa, "SelectSeries", "{"+cpu+`,"step":60,"groupBy":["service_name"],`+ms+"}"), a.mark, b.mark},
			{"querier SelectHeatmap on " + pa, connectCall(pa, "SelectHeatmap", "{"+cpu+`,"step":60,"groupBy":["service_name"],"queryType":"HEATMAP_QUERY_TYPE_INDIVIDUAL",`+ms+"}"), a.mark, b.mark},
			{"querier Diff on " + pa, connectCall(pa, "Diff", `{"left":{`+cpu+","+ms+`},"right":{`+cpu+","+ms+"}}"), a.mark, b.mark},
		}...)
	}
	return apis
}

// findOwnIDs waits until tn's key finds its dump's issue and its profile
// on the query port, and keeps their ids.
func findOwnIDs(t *testing.T, queryAddr string, tn *tenant) {
	t.Helper()
	eventually(t, 60*time.Second, tn.name+"'s issue through its key", func() (bool, string) {
		code, body, err := request(queryAddr, "GET", "/vigil/api/v1/dumps/issues?"+url.Values{"service": {tn.mark}}.Encode(), "", tn.key)
		var r struct {
			Issues []struct{ ID, Service string } `json:"issues"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &r) != nil {
			return false, fmt.Sprintf("%d %s %v", code, body, err)
		}
		for _, is := range r.Issues {
			if is.Service == tn.mark {
				tn.issueID = is.ID
				return true, ""
			}
		}
		return false, body
	})
	eventually(t, 60*time.Second, tn.name+"'s profile through its key", func() (bool, string) {
		code, body, err := request(queryAddr, "GET", "/vigil/api/v1/profiles/list?"+url.Values{"query": {fmt.Sprintf(`cpu{service=%q}`, tn.mark)},
			"start": {fmt.Sprint(time.Now().Add(-time.Hour).Unix())}, "end": {fmt.Sprint(time.Now().Add(time.Minute).Unix())}}.Encode(), "", tn.key)
		var r struct {
			Data []struct{ ID string } `json:"data"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &r) != nil || len(r.Data) != 1 {
			return false, fmt.Sprintf("%d %s %v", code, body, err)
		}
		tn.profileID = r.Data[0].ID
		return true, ""
	})
}

// checkTenancy asks every API with each key and none: team-a's key finds
// api.a and not api.b, team-b's key finds api.b and not api.a (or, for an
// API naming team-a's own record, is answered 200 or 404 without api.a),
// and no key is answered 401. The tenants' data may take a while to be
// stored and indexed: each key is asked again until it finds its own,
// within one deadline shared by all APIs (at least 5 s each); what the
// other tenant sees is judged on the answer that showed the asker its own.
func checkTenancy(t *testing.T, a, b *tenant, apis []tenancyAPI) {
	deadline := time.Now().Add(90 * time.Second)
	leaks := 0
	for _, api := range apis {
		t.Run(api.name, func(t *testing.T) {
			// ask asks with key until the answer is 200 and holds want.
			ask := func(key, want string) (int, string, bool) {
				var code int
				var body string
				var err error
				for until := max(time.Until(deadline), 5*time.Second); ; {
					start := time.Now()
					code, body, err = api.fetch(key)
					if err == nil && code == 200 && strings.Contains(body, want) {
						return code, body, true
					}
					if until -= time.Since(start) + 250*time.Millisecond; until <= 0 {
						if err != nil {
							body = err.Error()
						}
						return code, body, false
					}
					time.Sleep(250 * time.Millisecond)
				}
			}
			code, body, ok := ask(a.key, api.a)
			if !ok {
				t.Errorf("team-a's key does not find its own %q: %d %.300s", api.a, code, body)
			} else if api.b != "" && strings.Contains(body, api.b) {
				leaks++
				t.Errorf("LEAK: team-a's key sees team-b's %q: %s", api.b, around(body, api.b))
			}
			if api.b != "" {
				code, body, ok := ask(b.key, api.b)
				if !ok {
					t.Errorf("team-b's key does not find its own %q: %d %.300s", api.b, code, body)
				}
				if strings.Contains(body, api.a) {
					leaks++
					t.Errorf("LEAK: team-b's key sees team-a's %q: %d %s", api.a, code, around(body, api.a))
				}
			} else {
				code, body, err := api.fetch(b.key)
				switch {
				case err != nil:
					t.Errorf("team-b's key: %v", err)
				case strings.Contains(body, api.a):
					leaks++
					t.Errorf("LEAK: team-b's key sees team-a's %q: %d %s", api.a, code, around(body, api.a))
				case code != 200 && code != 404:
					t.Errorf("team-b's key, asking for team-a's record: %d %.300s; want 200 or 404 without it", code, body)
				}
			}
			if code, body, err := api.fetch(""); err != nil || code != 401 {
				t.Errorf("no key: %d %.300s %v; want 401", code, body, err)
			}
		})
	}
	t.Logf("%d APIs asked with team-a's key, team-b's key and none; %d leaks", len(apis), leaks)
}

// around returns the text of body around the first s, for a message.
func around(body, s string) string {
	i := strings.Index(body, s)
	if i < 0 {
		return fmt.Sprintf("%.200s", body)
	}
	from, to := max(i-100, 0), min(i+len(s)+100, len(body))
	return strings.Join(strings.Fields("…"+body[from:to]+"…"), " ")
}
