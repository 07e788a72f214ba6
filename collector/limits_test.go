package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/model"
)

// fixedLimits are tenants' limits as --auth.config gives them.
type fixedLimits map[string]auth.Limits

func (f fixedLimits) Limits(tenant string) (auth.Limits, bool) {
	l, ok := f[tenant]
	return l, ok
}

func tenantCtx(tenant string) context.Context {
	return auth.WithIdentity(context.Background(), auth.Identity{Tenant: tenant})
}

// newClockedLimiter returns a limiter whose clock the test moves.
func newClockedLimiter(t *testing.T, o LimitsOptions) (*tenantLimiter, *time.Time) {
	t.Helper()
	l, err := newTenantLimiter(o, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	return l, &now
}

func TestIngestionRate(t *testing.T) {
	l, now := newClockedLimiter(t, LimitsOptions{Tenants: fixedLimits{"a": {IngestionRate: 100, IngestionBurst: 200}}})
	a, b := tenantCtx("a"), tenantCtx("b")
	if e := l.allow(a, "logs", 150); e != nil {
		t.Fatalf("first 150 of a burst of 200: %v", e.msg)
	}
	e := l.allow(a, "logs", 100)
	if e == nil {
		t.Fatal("100 more with 50 tokens left: allowed; want refused")
	}
	if e.code != http.StatusTooManyRequests || e.retryAfterSeconds() != "1" {
		t.Errorf("got code %d, Retry-After %s; want 429, 1 (50 tokens short at 100/s)", e.code, e.retryAfterSeconds())
	}
	for _, want := range []string{`tenant "a"`, "ingestion_rate 100", "ingestion_burst 200", "--auth.config", "100 records refused"} {
		if !strings.Contains(e.msg, want) {
			t.Errorf("message %q does not name %q", e.msg, want)
		}
	}
	// another tenant has no limit; neither has "a" once its bucket refilled
	if e := l.allow(b, "logs", 10000); e != nil {
		t.Errorf("tenant b without limits: %v", e.msg)
	}
	*now = now.Add(500 * time.Millisecond)
	if e := l.allow(a, "logs", 100); e != nil {
		t.Errorf("after 0.5s (100 tokens): %v", e.msg)
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("a", "logs", reasonIngestionRate)); got != 100 {
		t.Errorf("limited_records_total{tenant=a,reason=ingestion_rate} = %v; want 100", got)
	}
}

// A request larger than the burst passes on a full bucket, and the debt
// it leaves holds the tenant to its rate.
func TestIngestionBurstLargerRequest(t *testing.T) {
	l, now := newClockedLimiter(t, LimitsOptions{IngestionRate: 10})
	ctx := context.Background() // auth off: tenant "default", global flags
	if e := l.allow(ctx, "spans", 50); e != nil {
		t.Fatalf("50 records on a full bucket of 10: %v", e.msg)
	}
	*now = now.Add(4 * time.Second) // 40 tokens paid back: the bucket is at 0
	e := l.allow(ctx, "spans", 1)
	if e == nil {
		t.Fatal("1 record while in debt: allowed")
	}
	if !strings.Contains(e.msg, "--collector.limits.ingestion-rate") || !strings.Contains(e.msg, `tenant "default"`) {
		t.Errorf("message %q: want the flag and tenant named", e.msg)
	}
	*now = now.Add(time.Second)
	if e := l.allow(ctx, "spans", 10); e != nil {
		t.Errorf("after the debt is paid: %v", e.msg)
	}
}

func hashes(hs ...uint64) []uint64 { return hs }

func TestMaxStreams(t *testing.T) {
	l, now := newClockedLimiter(t, LimitsOptions{MaxStreams: 100, StreamWindow: time.Hour,
		Tenants: fixedLimits{"a": {MaxStreams: 2}}})
	a := tenantCtx("a")
	if keep, e := l.admitStreams(a, hashes(1, 1, 2)); keep != nil || e != nil {
		t.Fatalf("two streams under a limit of 2: keep %v, %v", keep, e)
	}
	keep, e := l.admitStreams(a, hashes(1, 3, 3, 2, 4))
	if e == nil {
		t.Fatal("new streams 3 and 4 past max_streams 2: accepted")
	}
	if want := []bool{true, false, false, true, false}; fmt.Sprint(keep) != fmt.Sprint(want) {
		t.Errorf("keep = %v; want %v (lines of active streams kept)", keep, want)
	}
	if e.code != http.StatusBadRequest || !strings.Contains(e.msg, "max_streams 2") || !strings.Contains(e.msg, `tenant "a"`) || !strings.Contains(e.msg, "3 lines") {
		t.Errorf("got %d %q", e.code, e.msg)
	}
	// other tenants take the global default
	if _, e := l.admitStreams(tenantCtx("b"), hashes(1, 2, 3, 4, 5)); e != nil {
		t.Errorf("tenant b, 5 streams under the default 100: %v", e.msg)
	}
	// stream 1 stays active; stream 2 goes idle past the window and frees its room
	*now = now.Add(40 * time.Minute)
	if _, e := l.admitStreams(a, hashes(1)); e != nil {
		t.Fatal(e.msg)
	}
	*now = now.Add(30 * time.Minute)
	if keep, e := l.admitStreams(a, hashes(5, 1)); e != nil {
		t.Errorf("stream 2 idle 70m, window 1h: new stream 5 refused (keep %v): %v", keep, e.msg)
	}
	if keep, _ := l.admitStreams(a, hashes(2)); keep == nil || keep[0] {
		t.Error("stream 2 came back after its room was taken: accepted past the limit")
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("a", "logs", reasonMaxStreams)); got != 4 {
		t.Errorf("limited_records_total{reason=max_streams} = %v; want 4", got)
	}
}

// A flood of new streams keeps the table at the limit.
func TestMaxStreamsMemoryBound(t *testing.T) {
	l, now := newClockedLimiter(t, LimitsOptions{MaxStreams: 1000, StreamWindow: time.Minute})
	ctx := context.Background()
	hs := make([]uint64, 100)
	for round := range 50 {
		for i := range hs {
			hs[i] = uint64(round*len(hs) + i)
		}
		_, _ = l.admitStreams(ctx, hs)
		*now = now.Add(10 * time.Second)
	}
	s := l.state(auth.DefaultTenant)
	if n := len(s.active); n > 1000 {
		t.Errorf("tracked %d streams; want at most max_streams 1000", n)
	}
	if got := testutil.ToFloat64(l.streams.WithLabelValues(auth.DefaultTenant)); got > 1000 || got == 0 {
		t.Errorf("active_streams = %v", got)
	}
}

func TestLimitsOptionsValidated(t *testing.T) {
	for _, o := range []LimitsOptions{{IngestionRate: -1}, {IngestionBurst: -1}, {MaxStreams: -1}, {StreamWindow: -time.Second}} {
		if _, err := newTenantLimiter(o, nil); err == nil || !strings.Contains(err.Error(), "--collector.limits.") {
			t.Errorf("%+v: got %v; want an error naming the flag", o, err)
		}
	}
}

// withTenant authenticates every request as the tenant of X-Test-Tenant,
// as internal/auth's guard does.
func withTenant(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get("X-Test-Tenant"); t != "" {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Tenant: t}))
		}
		h.ServeHTTP(w, r)
	})
}

func ndjson(lines ...string) []byte {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

func TestLimitsOverHTTP(t *testing.T) {
	tc := newTestCollector(t, 0, func(o *Options) {
		o.Limits.Tenants = fixedLimits{"a": {IngestionRate: 1, IngestionBurst: 3, MaxStreams: 1}}
	})
	mux := http.NewServeMux()
	tc.c.RegisterHTTP(mux)
	srv := httptest.NewServer(withTenant(mux))
	defer srv.Close()
	post := func(tenant, path, ct string, body []byte) (int, string, http.Header) {
		t.Helper()
		return doRequest(t, "POST", srv.URL+path, body, "Content-Type", ct, "X-Test-Tenant", tenant)
	}

	// max_streams 1: the stream of "api" is active, "web" is new past it
	code, body, _ := post("a", "/api/v1/logs", "application/x-ndjson", ndjson(`{"service":"api","message":"1"}`, `{"service":"web","message":"2"}`))
	var resp logsAPIResponse
	_ = json.Unmarshal([]byte(body), &resp)
	if code != http.StatusBadRequest || resp.Accepted != 1 || !strings.Contains(resp.Error, "max_streams 1") {
		t.Errorf("logs API, a new stream past max_streams: got %d %s; want 400, accepted 1, naming max_streams", code, body)
	}
	// OTLP: partial success, 200
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "other")
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	pb, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	code, body, _ = post("a", "/v1/logs", "application/x-protobuf", pb)
	r := plogotlp.NewExportResponse()
	_ = r.UnmarshalProto([]byte(body))
	if code != http.StatusOK || r.PartialSuccess().RejectedLogRecords() != 1 || !strings.Contains(r.PartialSuccess().ErrorMessage(), "max_streams") {
		t.Errorf("OTLP, a new stream past max_streams: got %d, partial_success %d %q", code, r.PartialSuccess().RejectedLogRecords(), r.PartialSuccess().ErrorMessage())
	}
	// ingestion_rate: 2 of the burst of 3 are spent; 2 more are refused whole
	code, body, hdr := post("a", "/api/v1/logs", "application/x-ndjson", ndjson(`{"service":"api","message":"3"}`, `{"service":"api","message":"4"}`))
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body, "ingestion_rate 1") {
		t.Errorf("logs API over the rate: got %d %q, Retry-After %q", code, body, hdr.Get("Retry-After"))
	}
	// Loki push answers in its plain-text shape
	loki := `{"streams":[{"stream":{"service_name":"api"},"values":[["1700000000000000000","5"],["1700000000000000001","6"]]}]}`
	code, body, _ = post("a", "/loki/api/v1/push", "application/json", []byte(loki))
	if code != http.StatusTooManyRequests || !strings.Contains(body, `tenant "a" is over its ingestion limit`) {
		t.Errorf("Loki push over the rate: got %d %q", code, body)
	}
	// tenant b is not limited by a's flood
	if code, body, _ := post("b", "/api/v1/logs", "application/x-ndjson", ndjson(`{"service":"web","message":"b1"}`, `{"service":"x","message":"b2"}`)); code != http.StatusOK {
		t.Errorf("tenant b: got %d %s", code, body)
	}
	var msgs []string
	for _, rec := range tc.drain(t) {
		msgs = append(msgs, rec.Message)
	}
	if got := strings.Join(slices.Sorted(slices.Values(msgs)), ","); got != "1,b1,b2" {
		t.Errorf("queued %s; want 1,b1,b2", got)
	}
	if got := testutil.ToFloat64(tc.c.httpMetrics.rejected.WithLabelValues("logs_api", "stream_limit")); got != 1 {
		t.Errorf("rejected_records_total{logs_api,stream_limit} = %v; want 1", got)
	}
}

// BenchmarkLimitStreams is the stream check of a request of 1,000 lines of
// active streams, the cost every request pays under max_streams.
func BenchmarkLimitStreams(b *testing.B) {
	l, err := newTenantLimiter(LimitsOptions{MaxStreams: 100000}, nil)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]model.LogRecord, 1000)
	for i := range recs {
		recs[i] = model.LogRecord{Service: fmt.Sprintf("svc-%d", i%50), Host: "web-1", Level: "info", Source: "http", Message: "x"}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		kept, e := l.limitStreams(ctx, recs)
		if e != nil || len(kept) != len(recs) {
			b.Fatal("refused")
		}
	}
}

// Spans and Sentry events are held to the same bucket, answered in their
// protocols' shapes: 429 with Retry-After, and X-Sentry-Rate-Limits.
func TestIngestionRateSpansAndDumps(t *testing.T) {
	dc := newDumpsCollector(t, keyed(testKey), nil)
	dc.c.limits, _ = newTenantLimiter(LimitsOptions{IngestionRate: 1, IngestionBurst: 1}, nil)
	dc.c.dumps.limits = dc.c.limits
	ev := func(id string) []byte {
		return envelope(`{"event_id":"`+id+`"}`, eventItem(`{"event_id":"`+id+`","message":"boom"}`))
	}
	if r := dc.do(t, "POST", "/api/1/envelope/", ev(evID), sentryAuth(testKey)...); r.code != 200 {
		t.Fatalf("first event: got %d %s", r.code, r.body)
	}
	r := dc.do(t, "POST", "/api/1/envelope/", ev("aec79c33ec9942ab8353589fcb2e04dc"), sentryAuth(testKey)...)
	if r.code != 429 || r.header.Get("Retry-After") != "1" || r.header.Get("X-Sentry-Rate-Limits") != "1::organization:ingestion_rate" ||
		!strings.Contains(r.header.Get("X-Sentry-Error"), "ingestion_rate 1") {
		t.Errorf("second event over 1/s: got %d %s, headers %v", r.code, r.body, r.header)
	}

	// spans, through Zipkin
	q := tempQueue(t)
	sampler, _ := NewSampler(1, "", nil)
	tr := NewTraces(q, sampler, 1<<20, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	tr.limits = dc.c.limits // the same tenant "default", its bucket empty
	mux := http.NewServeMux()
	tr.RegisterZipkin(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	span := `[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get","timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"z"}}]`
	code, body, hdr := doRequest(t, "POST", srv.URL+"/api/v2/spans", []byte(span), "Content-Type", "application/json")
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "over its ingestion limit") {
		t.Errorf("span over the tenant's rate: got %d %q, Retry-After %q", code, body, hdr.Get("Retry-After"))
	}
}

// Over OTLP/gRPC the rate limit is RESOURCE_EXHAUSTED with a RetryInfo, so
// exporters retry later, and max_streams a partial success.
func TestLimitsOverGRPC(t *testing.T) {
	_, conn := runGRPC(t, func(o *Options) { o.Limits = LimitsOptions{IngestionRate: 1, IngestionBurst: 2, MaxStreams: 1} })
	client := plogotlp.NewGRPCClient(conn)
	req := func(services ...string) plogotlp.ExportRequest {
		ld := plog.NewLogs()
		for _, s := range services {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", s)
			rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
		}
		return plogotlp.NewExportRequestFromLogs(ld)
	}
	resp, err := client.Export(context.Background(), req("api", "web"))
	if err != nil || resp.PartialSuccess().RejectedLogRecords() != 1 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "max_streams 1") {
		t.Fatalf("a new stream past max_streams: got %v, partial_success %d %q", err, resp.PartialSuccess().RejectedLogRecords(), resp.PartialSuccess().ErrorMessage())
	}
	_, err = client.Export(context.Background(), req("api"))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "ingestion_rate 1") {
		t.Fatalf("over the rate: got %v; want RESOURCE_EXHAUSTED naming ingestion_rate", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() < time.Second {
		t.Errorf("details %v: want a RetryInfo of at least 1s", st.Details())
	}
}
