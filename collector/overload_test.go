package collector

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

func TestRequestGrade(t *testing.T) {
	hdr := func(v string) *http.Request {
		r := httptest.NewRequest("POST", "/", nil)
		if v != "" {
			r.Header.Set("X-Vigil-Grade", v)
		}
		return r
	}
	for _, tc := range []struct {
		r         *http.Request
		hdr, best int
		want      int
	}{
		{hdr("2"), 0, 1, 2}, // the header wins over the records
		{hdr("9"), 0, 3, 3}, // not a grade: the records'
		{hdr("x"), 0, 0, 0}, // nothing: unknown (4 to the guard)
		{nil, 1, 4, 1},
		{nil, 0, 4, 4},
	} {
		if got := requestGrade(tc.r, tc.hdr, tc.best); got != tc.want {
			t.Errorf("requestGrade(%v, %d, %d) = %d; want %d", tc.r != nil, tc.hdr, tc.best, got, tc.want)
		}
	}
}

func TestCountByService(t *testing.T) {
	type rec struct {
		s string
		g int
	}
	recs := []rec{{"a", 3}, {"a", 0}, {"b", 2}, {"a", 4}, {"c", 0}, {"b", 9}}
	counts, best := countByService(len(recs), func(i int) (string, int) { return recs[i].s, recs[i].g })
	want := []serviceCount{{"a", 3}, {"b", 2}, {"c", 1}}
	if best != 2 || len(counts) != len(want) {
		t.Fatalf("got %v best %d; want %v best 2", counts, best, want)
	}
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("got %v; want %v", counts, want)
		}
	}
}

// TestServiceBudget: a service over its budget is answered 429 with
// Retry-After, naming the flag, counted by service and grade, and nothing
// of its request is queued; another service keeps its own budget.
func TestServiceBudget(t *testing.T) {
	tc := newTestCollectorWith(t, func(o *Options) { o.Overload = OverloadOptions{ServiceRate: 10, ServiceBurst: 10} }, nil)
	post := func(service string, n int, grade string) (int, string, http.Header) {
		recs := make([]model.LogRecord, n)
		for i := range recs {
			recs[i] = model.LogRecord{Service: service, Message: "m", Timestamp: int64(i + 1), Grade: 3}
		}
		body, err := otlplogs.Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		return tc.post(t, "/v1/logs", contentTypeProtobuf, body, "X-Vigil-Grade", grade)
	}
	if code, body, _ := post("a", 8, ""); code != 200 {
		t.Fatalf("within the budget: %d %s", code, body)
	}
	code, body, h := post("a", 8, "2")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(body, "--collector.limits.service-rate") {
		t.Fatalf("over the budget: %d Retry-After %q %s", code, h.Get("Retry-After"), body)
	}
	// more than a burst in one request: refused until the bucket is full,
	// then admitted for the whole bucket
	if code, _, h := post("a", 25, ""); code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Fatalf("a request larger than the burst: %d Retry-After %q", code, h.Get("Retry-After"))
	}
	if code, body, _ := post("b", 25, ""); code != 200 {
		t.Fatalf("a request larger than the burst on a full bucket: %d %s", code, body)
	}
	if code, _, _ := post("b", 1, ""); code != http.StatusTooManyRequests {
		t.Fatalf("after a request larger than the burst: %d; want 429", code)
	}
	if n := len(tc.drain(t)); n != 33 {
		t.Fatalf("queued %d records; want the 33 answered 200", n)
	}
	if v := testutil.ToFloat64(tc.c.admission.shed.WithLabelValues("logs", "a", "2", reasonBudget)); v != 8 {
		t.Errorf("shed records of a, grade 2 (header): %v; want 8", v)
	}
	if v := testutil.ToFloat64(tc.c.admission.shed.WithLabelValues("logs", "a", "3", reasonBudget)); v != 25 {
		t.Errorf("shed records of a, grade 3 (records): %v; want 25", v)
	}
}

// TestGuardShedsByGrade: with the guard's only slot taken and its queue
// filled by grade-4 requests, another grade-4 request is shed with 429
// while a grade-1 request waits for the slot and is served first.
func TestGuardShedsByGrade(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newAdmission(OverloadOptions{MaxInflight: 1, MaxQueue: 2, QueueBudget: 5 * time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	queued := func() int { return int(gaugeValue(t, reg, "vigil_resilience_guard_queued")) }
	ctx := context.Background()
	one := []serviceCount{{"s", 1}}
	release, refused := a.admit(ctx, "logs", &origin{arrived: time.Now()}, 4, one)
	if refused != nil {
		t.Fatal(refused.msg)
	}
	// one grade-4 request waits (the queue is at 50 % after it)
	waiting := make(chan *overloaded, 1)
	go func() {
		r, ref := a.admit(ctx, "logs", &origin{arrived: time.Now()}, 4, one)
		if r != nil {
			r()
		}
		waiting <- ref
	}()
	for queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	h := http.Header{}
	if _, ref := a.admit(ctx, "logs", &origin{arrived: time.Now(), header: h}, 4, one); ref == nil || h.Get("Retry-After") != "1" {
		t.Fatalf("a grade-4 request over its share was not shed (Retry-After %q)", h.Get("Retry-After"))
	}
	served := make(chan struct{})
	go func() {
		r, ref := a.admit(ctx, "logs", &origin{grade: 1, arrived: time.Now()}, 0, one)
		if ref != nil {
			t.Error(ref.msg)
			close(served)
			return
		}
		if queued() != 1 {
			t.Error("the grade-1 request was not served before the waiting grade-4 one")
		}
		r()
		close(served)
	}()
	for queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	release()
	<-served
	if ref := <-waiting; ref != nil {
		t.Fatal(ref.msg)
	}
	if v := testutil.ToFloat64(a.shed.WithLabelValues("logs", "s", "4", "shed")); v != 1 {
		t.Errorf("shed grade-4 records: %v; want 1", v)
	}
}

// gaugeValue reads the gauge name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

type overloadCollector struct {
	testCollector
	spans *diskqueue.Queue
	reg   *prometheus.Registry
}

// newTestCollectorWith is a collector over two disk queues, logs and
// spans, serving the log and OTLP trace receivers, with options set by
// opt; wrap, when not nil, is what the collector publishes through.
func newTestCollectorWith(t *testing.T, opt func(*Options), wrap func(*diskqueue.Queue) queue.Producer) *overloadCollector {
	t.Helper()
	open := func() *diskqueue.Queue {
		qo := diskqueue.DefaultOptions()
		qo.Dir = t.TempDir()
		q, err := diskqueue.Open(qo)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	q, qs := open(), open()
	reg := prometheus.NewRegistry()
	o := DefaultOptions()
	o.MaxBodyBytes = 1 << 20
	o.BatchMaxWait = 5 * time.Millisecond
	o.Logger = slog.New(slog.DiscardHandler)
	o.Registerer = reg
	opt(&o)
	var pl, ps queue.Producer = q, qs
	if wrap != nil {
		pl, ps = wrap(q), wrap(qs)
	}
	c, err := New(o, Queues{Logs: pl, Spans: ps})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.RegisterHTTP(mux)
	c.traces.RegisterOTLP(mux)
	oc := &overloadCollector{testCollector: testCollector{q: q, srv: httptest.NewServer(mux), c: c}, spans: qs, reg: reg}
	t.Cleanup(func() {
		oc.srv.Close()
		q.Close()
		qs.Close()
	})
	return oc
}

// TestEveryReceiverIsBudgeted: each HTTP and gRPC receiver refuses a
// service over its budget — 429 with Retry-After (gRPC: RESOURCE_EXHAUSTED
// with a RetryInfo), the Sentry intake also with X-Sentry-Rate-Limits —
// after admitting its first request, and counts the refused records.
func TestEveryReceiverIsBudgeted(t *testing.T) {
	o := DefaultOptions()
	const any = "127.0.0.1:0"
	o.Listen = Addrs{HTTP: any, GRPC: any, Zipkin: any, JaegerHTTP: any, Dumps: any}
	o.Dumps.Keys = []string{testKey}
	o.Overload = OverloadOptions{ServiceRate: 0.001, ServiceBurst: 1}
	o.BatchMaxWait = 0
	o.Logger = slog.New(slog.DiscardHandler)
	c, err := New(o, Queues{Logs: &memQueue{}, Spans: &memQueue{}, Dumps: &memQueue{}})
	if err != nil {
		t.Fatal(err)
	}
	listenAndRun(t, c)
	ctx := context.Background()

	for _, tc := range []struct {
		name, addr, path, ct, body, signal, service string
		ok                                          int
	}{
		{"logs API", "collector", "/api/v1/logs", "application/json", `{"service":"logsapi","message":"m"}`, "logs", "logsapi", 200},
		{"Loki push", "collector", "/loki/api/v1/push", "application/json", `{"streams":[{"stream":{"service":"loki","grade":"2"},"values":[["1700000000000000000","m"]]}]}`, "logs", "loki", 204},
		{"Zipkin", "zipkin", "/api/v2/spans", "application/json", `[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get","timestamp":1700000000000000,"duration":10,"localEndpoint":{"serviceName":"zipkin"}}]`, "spans", "zipkin", 202},
		{"Sentry store", "dumps", "/api/42/store/?sentry_key=" + testKey, "application/json", `{"message":"m","tags":{"service":"sentry"}}`, "dumps", "sentry", 200},
	} {
		url := "http://" + c.Addr(tc.addr) + tc.path
		for i, want := range []int{tc.ok, http.StatusTooManyRequests} {
			code, body, h := doRequest(t, "POST", url, []byte(tc.body), "Content-Type", tc.ct)
			if code != want {
				t.Fatalf("%s, request %d: %d %s; want %d", tc.name, i+1, code, body, want)
			}
			if want == http.StatusTooManyRequests && (h.Get("Retry-After") == "" || !strings.Contains(body, "--collector.limits.service-rate")) {
				t.Errorf("%s: 429 without Retry-After or the budget named: %q %s", tc.name, h.Get("Retry-After"), body)
			}
			if want == http.StatusTooManyRequests && tc.signal == "dumps" && !strings.HasSuffix(h.Get("X-Sentry-Rate-Limits"), ":overloaded") {
				t.Errorf("%s: X-Sentry-Rate-Limits %q", tc.name, h.Get("X-Sentry-Rate-Limits"))
			}
		}
		grade := "4"
		if tc.name == "Loki push" {
			grade = "2" // the stream's label
		}
		if v := testutil.ToFloat64(c.admission.shed.WithLabelValues(tc.signal, tc.service, grade, reasonBudget)); v != 1 {
			t.Errorf("%s: %v records counted as shed; want 1", tc.name, v)
		}
	}

	conn, err := grpc.NewClient(c.Addr("otlp-grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(model.AttrServiceName, "grpc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	client := ptraceotlp.NewGRPCClient(conn)
	for i, want := range []codes.Code{codes.OK, codes.ResourceExhausted} {
		_, err := client.Export(metadata.AppendToOutgoingContext(ctx, "x-vigil-grade", "3"), ptraceotlp.NewExportRequestFromTraces(td))
		st := status.Convert(err)
		if st.Code() != want {
			t.Fatalf("OTLP/gRPC traces, call %d: %v; want %v", i+1, err, want)
		}
		if want == codes.ResourceExhausted {
			var info *errdetails.RetryInfo
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					info = ri
				}
			}
			if info == nil || info.GetRetryDelay().AsDuration() <= 0 {
				t.Errorf("RESOURCE_EXHAUSTED without a RetryInfo: %v", st.Details())
			}
		}
	}
	if v := testutil.ToFloat64(c.admission.shed.WithLabelValues("spans", "grpc", "3", reasonBudget)); v != 1 {
		t.Errorf("OTLP/gRPC: %v spans counted as shed; want 1", v)
	}
}
