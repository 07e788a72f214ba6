package collector

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

// recordingDestination stores what it accepted; with err set it refuses.
type recordingDestination struct {
	mu       sync.Mutex
	err      error
	accepted []pmetricotlp.ExportRequest
}

func (d *recordingDestination) ExportMetrics(_ context.Context, req pmetricotlp.ExportRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.accepted = append(d.accepted, req)
	return nil
}

func (d *recordingDestination) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.accepted)
}

// tempQueue is a disk queue under the test's temporary directory.
func tempQueue(t testing.TB) *diskqueue.Queue {
	t.Helper()
	qo := diskqueue.DefaultOptions()
	qo.Dir = t.TempDir()
	q, err := diskqueue.Open(qo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// logQueue is the log queue a collector needs, unused by metrics.
func logQueue(t *testing.T) Queues { return Queues{Logs: tempQueue(t)} }

func newMetricsCollector(t *testing.T, dest MetricsDestination) (*Collector, *httptest.Server) {
	t.Helper()
	o := DefaultOptions()
	o.MaxBodyBytes = 1 << 20
	o.Logger = slog.New(slog.DiscardHandler)
	o.Registerer = prometheus.NewRegistry()
	o.Metrics = dest
	c, err := New(o, logQueue(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, srv
}

func sampleMetricsRequest() pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("orders")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sum.DataPoints().AppendEmpty().SetIntValue(3)
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

func TestOTLPMetricsHTTP(t *testing.T) {
	dest := &recordingDestination{}
	c, srv := newMetricsCollector(t, dest)
	body, _ := sampleMetricsRequest().MarshalProto()
	post := func(ct string, b []byte) (int, string) {
		code, resp, _ := doRequest(t, "POST", srv.URL+"/v1/metrics", b, "Content-Type", ct)
		return code, resp
	}

	if code, resp := post(contentTypeProtobuf, body); code != http.StatusOK {
		t.Fatalf("protobuf: %d %s", code, resp)
	}
	js, _ := sampleMetricsRequest().MarshalJSON()
	if code, resp := post(contentTypeJSON, js); code != http.StatusOK {
		t.Fatalf("JSON: %d %s", code, resp)
	}
	if n := dest.count(); n != 2 {
		t.Fatalf("destination got %d requests, want 2", n)
	}
	if got := dest.accepted[1].Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Name(); got != "orders" {
		t.Fatalf("metric name %q", got)
	}
	if v := testutil.ToFloat64(c.httpMetrics.received.WithLabelValues("otlp_http_metrics")); v != 2 {
		t.Fatalf("received %v data points, want 2", v)
	}

	// Bad input: 400 naming the problem, counted, nothing handed on.
	code, resp := post(contentTypeProtobuf, []byte{0xff, 0xff, 0xff})
	if code != http.StatusBadRequest || !strings.Contains(resp, "cannot decode the OTLP metrics request") {
		t.Fatalf("bad protobuf: %d %q", code, resp)
	}
	code, resp = post(contentTypeJSON, []byte(`{"resourceMetrics":[`))
	if code != http.StatusBadRequest || !strings.Contains(resp, "cannot decode") {
		t.Fatalf("bad JSON: %d %q", code, resp)
	}
	code, resp = post("text/plain", body)
	if code != http.StatusUnsupportedMediaType || !strings.Contains(resp, "unsupported Content-Type") {
		t.Fatalf("text/plain: %d %q", code, resp)
	}
	if v := testutil.ToFloat64(c.httpMetrics.rejected.WithLabelValues("otlp_http_metrics", "invalid")); v != 3 {
		t.Fatalf("rejected invalid = %v, want 3", v)
	}
	if n := dest.count(); n != 2 {
		t.Fatalf("destination got %d requests after bad input, want 2", n)
	}
}

func TestOTLPMetricsDestinationRefuses(t *testing.T) {
	dest := &recordingDestination{err: errors.New("TSDB closed")}
	c, srv := newMetricsCollector(t, dest)
	body, _ := sampleMetricsRequest().MarshalProto()
	code, resp, hdr := doRequest(t, "POST", srv.URL+"/v1/metrics", body, "Content-Type", contentTypeProtobuf)
	if code != http.StatusServiceUnavailable || !strings.Contains(resp, "TSDB closed") {
		t.Fatalf("refused: %d %q", code, resp)
	}
	if hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if v := testutil.ToFloat64(c.httpMetrics.rejected.WithLabelValues("otlp_http_metrics", "unavailable")); v != 1 {
		t.Fatalf("rejected unavailable = %v, want 1", v)
	}
	if v := testutil.ToFloat64(c.httpMetrics.received.WithLabelValues("otlp_http_metrics")); v != 0 {
		t.Fatalf("received %v data points of a refused request", v)
	}
}

// TestOTLPMetricsForwarder: the destination's answer is the client's
// answer — its 4xx a 400, its 5xx or absence a 503.
func TestOTLPMetricsForwarder(t *testing.T) {
	var answer int
	var got []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != contentTypeProtobuf {
			t.Errorf("forwarded Content-Type %q", r.Header.Get("Content-Type"))
		}
		w.WriteHeader(answer)
		_, _ = io.WriteString(w, "out of order sample")
	}))
	t.Cleanup(up.Close)
	_, srv := newMetricsCollector(t, MetricsForwarder(up.URL, nil))
	js, _ := sampleMetricsRequest().MarshalJSON()
	for _, tc := range []struct{ upstream, want int }{
		{http.StatusOK, http.StatusOK},
		{http.StatusBadRequest, http.StatusBadRequest},
		{http.StatusInternalServerError, http.StatusServiceUnavailable},
		{http.StatusTooManyRequests, http.StatusServiceUnavailable},
	} {
		answer, got = tc.upstream, nil
		code, resp, _ := doRequest(t, "POST", srv.URL+"/v1/metrics", js, "Content-Type", contentTypeJSON)
		if code != tc.want {
			t.Fatalf("upstream %d: answered %d %s, want %d", tc.upstream, code, resp, tc.want)
		}
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(got); err != nil || req.Metrics().DataPointCount() != 1 {
			t.Fatalf("upstream got %d data points (%v)", req.Metrics().DataPointCount(), err)
		}
	}
	up.Close()
	code, resp, _ := doRequest(t, "POST", srv.URL+"/v1/metrics", js, "Content-Type", contentTypeJSON)
	if code != http.StatusServiceUnavailable || !strings.Contains(resp, "--collector.metrics-url") {
		t.Fatalf("destination down: %d %q", code, resp)
	}
}

// TestOTLPMetricsForwarderTenant: the tenant the collector authenticated
// goes to the destination as X-Scope-OrgID; none without auth.
func TestOTLPMetricsForwarderTenant(t *testing.T) {
	var orgIDs []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		orgIDs = append(orgIDs, r.Header.Get(auth.OrgIDHeader))
	}))
	t.Cleanup(up.Close)
	f := MetricsForwarder(up.URL, nil)
	ctx := context.Background()
	if err := f.ExportMetrics(ctx, sampleMetricsRequest()); err != nil {
		t.Fatal(err)
	}
	if err := f.ExportMetrics(auth.WithIdentity(ctx, auth.Identity{Tenant: "team-a"}), sampleMetricsRequest()); err != nil {
		t.Fatal(err)
	}
	if len(orgIDs) != 2 || orgIDs[0] != "" || orgIDs[1] != "team-a" {
		t.Fatalf("got X-Scope-OrgID %q; want none, then team-a", orgIDs)
	}
}

func TestOTLPMetricsWithoutDestination(t *testing.T) {
	_, srv := newMetricsCollector(t, nil)
	body, _ := sampleMetricsRequest().MarshalProto()
	if code, _, _ := doRequest(t, "POST", srv.URL+"/v1/metrics", body, "Content-Type", contentTypeProtobuf); code != http.StatusNotFound {
		t.Fatalf("no destination: %d, want 404", code)
	}
}

// runGRPC runs a collector with the options set by opt, serving HTTP and
// OTLP/gRPC on loopback, and returns it and a connection to its gRPC port.
func runGRPC(t *testing.T, opt func(*Options)) (*Collector, *grpc.ClientConn) {
	t.Helper()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	o.Registerer = prometheus.NewRegistry()
	o.Listen = Addrs{HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0"}
	opt(&o)
	c, err := New(o, logQueue(t))
	if err != nil {
		t.Fatal(err)
	}
	listenAndRun(t, c)
	conn, err := grpc.NewClient(c.Addr("otlp-grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return c, conn
}

func TestOTLPMetricsGRPC(t *testing.T) {
	dest := &recordingDestination{}
	c, conn := runGRPC(t, func(o *Options) { o.Metrics = dest })
	client := pmetricotlp.NewGRPCClient(conn)
	if _, err := client.Export(context.Background(), sampleMetricsRequest()); err != nil {
		t.Fatal(err)
	}
	if dest.count() != 1 {
		t.Fatalf("destination got %d requests, want 1", dest.count())
	}
	dest.mu.Lock()
	dest.err = &MetricsRefusal{Code: http.StatusBadRequest, Msg: "invalid temporality"}
	dest.mu.Unlock()
	if _, err := client.Export(context.Background(), sampleMetricsRequest()); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "invalid temporality") {
		t.Fatalf("refused as invalid: %v", err)
	}
	// A destination that does not trust the collector is not the client's
	// fault: the client keeps its metrics and retries.
	dest.mu.Lock()
	dest.err = &MetricsRefusal{Code: http.StatusUnauthorized, Msg: "no credentials"}
	dest.mu.Unlock()
	if _, err := client.Export(context.Background(), sampleMetricsRequest()); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Fatalf("destination refusing the collector: %v, want UNAVAILABLE naming trusted_proxies", err)
	}
	dest.mu.Lock()
	dest.err = errors.New("TSDB closed")
	dest.mu.Unlock()
	if _, err := client.Export(context.Background(), sampleMetricsRequest()); status.Code(err) != codes.Unavailable {
		t.Fatalf("destination failing: %v, want UNAVAILABLE", err)
	}
	if v := testutil.ToFloat64(c.httpMetrics.rejected.WithLabelValues("otlp_grpc_metrics", "unavailable")); v != 2 {
		t.Fatalf("rejected unavailable = %v, want 2", v)
	}
	if dest.count() != 1 {
		t.Fatalf("destination holds %d requests, want 1", dest.count())
	}
}

// FuzzOTLPMetricsHTTP: any body, protobuf or JSON, is answered 200 (handed
// to the destination, data points intact) or 400, never a panic.
func FuzzOTLPMetricsHTTP(f *testing.F) {
	pb, _ := sampleMetricsRequest().MarshalProto()
	js, _ := sampleMetricsRequest().MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	dest := &recordingDestination{}
	o := DefaultOptions()
	o.MaxBodyBytes = 1 << 20
	o.Logger = slog.New(slog.DiscardHandler)
	o.Metrics = dest
	c, err := New(o, Queues{Logs: tempQueue(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := contentTypeProtobuf
		if isJSON {
			ct = contentTypeJSON
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		before := dest.count()
		c.handleOTLPMetrics(w, r)
		switch w.Code {
		case http.StatusOK:
			req := pmetricotlp.NewExportRequest()
			if isJSON {
				err = req.UnmarshalJSON(body)
			} else {
				err = req.UnmarshalProto(body)
			}
			if err != nil {
				t.Fatalf("200 for a body that does not decode: %v", err)
			}
			if n := req.Metrics().DataPointCount(); n > 0 && dest.count() != before+1 {
				t.Fatalf("200 for %d data points the destination did not get", n)
			}
		case http.StatusBadRequest:
			if !strings.Contains(w.Body.String(), "cannot decode") {
				t.Fatalf("400 without the decoder's message: %q", w.Body.String())
			}
		default:
			t.Fatalf("answered %d %q", w.Code, w.Body.String())
		}
	})
}

// TestOTLPMetricsPartialSuccess: a destination's partial_success (the
// federation's series budget) reaches the client, and the refused data
// points are counted as rejected.
func TestOTLPMetricsPartialSuccess(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		resp := pmetricotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedDataPoints(1)
		resp.PartialSuccess().SetErrorMessage("1 samples of new series were refused: --federation.limits.max-series-per-service")
		b, _ := resp.MarshalProto()
		w.Header().Set("Content-Type", contentTypeProtobuf)
		_, _ = w.Write(b)
	}))
	t.Cleanup(up.Close)
	c, srv := newMetricsCollector(t, MetricsForwarder(up.URL, nil))
	body, _ := sampleMetricsRequest().MarshalProto()
	code, answer, _ := doRequest(t, "POST", srv.URL+"/v1/metrics", body, "Content-Type", contentTypeProtobuf)
	resp := pmetricotlp.NewExportResponse()
	if err := resp.UnmarshalProto([]byte(answer)); code != http.StatusOK || err != nil {
		t.Fatalf("answered %d (%v); want 200 with an ExportMetricsServiceResponse", code, err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), "max-series-per-service") {
		t.Fatalf("partial_success = %d %q; want the destination's", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	if v := testutil.ToFloat64(c.httpMetrics.rejected.WithLabelValues("otlp_http_metrics", "limit")); v != 1 {
		t.Fatalf("rejected limit = %v, want 1", v)
	}
}
