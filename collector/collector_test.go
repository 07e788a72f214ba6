package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testCollector struct {
	q   *diskqueue.Queue
	srv *httptest.Server
	c   *Collector
}

// newTestCollector builds a collector over a disk queue (maxQueueBytes: 0
// for the default); each of opts changes its options.
func newTestCollector(t *testing.T, maxQueueBytes int64, opts ...func(*Options)) *testCollector {
	t.Helper()
	qo := diskqueue.DefaultOptions()
	qo.Dir = t.TempDir()
	if maxQueueBytes > 0 {
		qo.MaxBytes = maxQueueBytes
	}
	q, err := diskqueue.Open(qo)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.MaxBodyBytes = 1 << 20
	o.BatchMaxWait = 5 * time.Millisecond
	o.Logger = slog.New(slog.DiscardHandler)
	o.Registerer = prometheus.NewRegistry()
	for _, f := range opts {
		f(&o)
	}
	c, err := New(o, Queues{Logs: q})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.RegisterHTTP(mux)
	tc := &testCollector{q: q, srv: httptest.NewServer(mux), c: c}
	t.Cleanup(func() {
		tc.srv.Close()
		q.Close()
	})
	return tc
}

func (tc *testCollector) post(t *testing.T, path, ct string, body []byte, hdr ...string) (int, string, http.Header) {
	t.Helper()
	return doRequest(t, "POST", tc.srv.URL+path, body, append([]string{"Content-Type", ct}, hdr...)...)
}

// doRequest sends a request with headers given as name, value, ... and
// returns the answer's status, body and headers.
func doRequest(t testing.TB, method, url string, body []byte, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// listenAndRun binds c's listeners and runs it until the test ends.
func listenAndRun(t testing.TB, c *Collector) {
	t.Helper()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// drain reads every queued record.
func (tc *testCollector) drain(t *testing.T) []model.LogRecord {
	t.Helper()
	var out []model.LogRecord
	drainQueue(t, tc.q, func(m queue.Message) {
		var err error
		if out, err = otlplogs.Unmarshal(out, m.Value); err != nil {
			t.Fatal(err)
		}
	})
	return out
}

// drainQueue passes every queued message to fn and commits it, until the
// queue stays empty for 200ms.
func drainQueue(t *testing.T, q *diskqueue.Queue, fn func(queue.Message)) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := q.Fetch(ctx)
		cancel()
		if err != nil {
			return
		}
		fn(m)
		if err := q.Commit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLogsAPI(t *testing.T) {
	tc := newTestCollector(t, 0)
	body := `{"service":"a","message":"one","timestamp":"2024-05-01T12:00:00Z"}` + "\n" + `{"service":"b","message":"two"}`
	code, resp, _ := tc.post(t, "/api/v1/logs", "application/x-ndjson", []byte(body))
	if code != 200 || strings.TrimSpace(resp) != `{"accepted":2}` {
		t.Fatalf("got %d %s", code, resp)
	}
	recs := tc.drain(t)
	if len(recs) != 2 {
		t.Fatalf("queued %d records; want 2", len(recs))
	}
	for _, r := range recs {
		if r.ID.IsZero() || r.Timestamp == 0 || r.ObservedTimestamp == 0 || r.Source != "http" {
			t.Errorf("record missing id, times or source: %+v", r)
		}
	}

	// A resent timestamped record keeps its id; an untimestamped one does not.
	tc.post(t, "/api/v1/logs", "application/x-ndjson", []byte(body))
	again := tc.drain(t)
	byMsg := func(rs []model.LogRecord, m string) model.LogRecord {
		for _, r := range rs {
			if r.Message == m {
				return r
			}
		}
		t.Fatalf("no record %q", m)
		return model.LogRecord{}
	}
	if byMsg(recs, "one").ID != byMsg(again, "one").ID {
		t.Errorf("timestamped record got a new id on resend")
	}
	if byMsg(recs, "two").ID == byMsg(again, "two").ID {
		t.Errorf("records without timestamps must not share ids across requests")
	}

	// Gzip.
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(`[{"message":"zipped"}]`))
	zw.Close()
	if code, resp, _ := tc.post(t, "/api/v1/logs", "application/json", z.Bytes(), "Content-Encoding", "gzip"); code != 200 {
		t.Errorf("gzip: got %d %s", code, resp)
	}
	if recs := tc.drain(t); len(recs) != 1 || recs[0].Message != "zipped" || recs[0].Service != "unknown_service" {
		t.Errorf("gzip: queued %+v", recs)
	}

	// A bad line rejects the body whole.
	code, resp, _ = tc.post(t, "/api/v1/logs", "application/x-ndjson", []byte(`{"message":"fine"}`+"\n"+`{"message":1}`))
	if code != 400 || !strings.Contains(resp, `line 2: field \"message\": want a string, got number`) || !strings.Contains(resp, "1 of 2 records are invalid") {
		t.Errorf("bad line: got %d %s", code, resp)
	}
	if recs := tc.drain(t); len(recs) != 0 {
		t.Errorf("a rejected body queued %d records", len(recs))
	}
	if code, resp, _ := tc.post(t, "/api/v1/logs", "application/json", bytes.Repeat([]byte("x"), 2<<20)); code != 413 {
		t.Errorf("oversized: got %d %s", code, resp)
	}
}

func TestQueueFull(t *testing.T) {
	tc := newTestCollector(t, 4096)
	line := `{"message":"` + strings.Repeat("z", 500) + `"}` + "\n"
	var code int
	var hdr http.Header
	for i := 0; i < 20 && code != 429; i++ {
		code, _, hdr = tc.post(t, "/api/v1/logs", "application/x-ndjson", []byte(strings.Repeat(line, 3)))
	}
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("got %d, Retry-After %q; want 429 with Retry-After", code, hdr.Get("Retry-After"))
	}
	tc.drain(t) // consuming frees the queue
	if code, resp, _ := tc.post(t, "/api/v1/logs", "application/x-ndjson", []byte(line)); code != 200 {
		t.Errorf("after draining: got %d %s", code, resp)
	}
}

func TestOTLPLogs(t *testing.T) {
	tc := newTestCollector(t, 0)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("k8s.pod.name", "p1")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("paid")
	lr.SetSeverityNumber(plog.SeverityNumberError)
	req := plogotlp.NewExportRequestFromLogs(ld)
	pb, _ := req.MarshalProto()
	code, resp, hdr := tc.post(t, "/v1/logs", "application/x-protobuf", pb)
	if code != 200 || hdr.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("protobuf: got %d %q %q", code, resp, hdr.Get("Content-Type"))
	}
	if err := plogotlp.NewExportResponse().UnmarshalProto([]byte(resp)); err != nil {
		t.Errorf("response is not an ExportLogsServiceResponse: %v", err)
	}
	js, _ := req.MarshalJSON()
	if code, resp, _ := tc.post(t, "/v1/logs", "application/json", js); code != 200 || !strings.HasPrefix(resp, "{") {
		t.Fatalf("json: got %d %q", code, resp)
	}
	recs := tc.drain(t)
	if len(recs) != 2 {
		t.Fatalf("queued %d; want 2", len(recs))
	}
	for _, r := range recs {
		if r.Service != "checkout" || r.Level != "error" || r.Source != "otlp" || r.Message != "paid" || r.Timestamp == 0 || r.ID.IsZero() {
			t.Errorf("record: %+v", r)
		}
		if v, _ := r.Attr("k8s.pod.name"); v != "p1" {
			t.Errorf("resource attribute lost: %+v", r.Attributes)
		}
	}
	code, resp, _ = tc.post(t, "/v1/logs", "application/x-protobuf", []byte{0xff, 0xff})
	if code != 400 || !strings.Contains(resp, "cannot decode OTLP logs protobuf") {
		t.Errorf("bad protobuf: got %d %q", code, resp)
	}
	if code, _, _ := tc.post(t, "/v1/logs", "text/plain", []byte("x")); code != 415 {
		t.Errorf("text/plain: got %d; want 415", code)
	}
}

func TestGroupByService(t *testing.T) {
	recs := []model.LogRecord{{Service: "a", Message: "1"}, {Service: "b", Message: "2"}, {Service: "a", Message: "3"}}
	g := groupByService(recs)
	if len(g) != 2 || len(g[0]) != 2 || g[0][1].Message != "3" || g[1][0].Message != "2" {
		t.Errorf("got %+v", g)
	}
}

func TestLargeBatchesAreSplit(t *testing.T) {
	tc := newTestCollector(t, 0)
	// 8 MiB of records: more than one queue message may hold.
	recs := make([]model.LogRecord, 40)
	for i := range recs {
		recs[i] = model.LogRecord{ID: model.RecordID{byte(i + 1)}, Service: "big", Message: strings.Repeat("x", 200<<10)}
	}
	pl := newPipeline(tc.q, 8192, time.Millisecond, nil)
	pl.logger = slog.New(slog.DiscardHandler)
	if err := pl.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	msgs, total := 0, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := tc.q.Fetch(ctx)
		cancel()
		if err != nil {
			break
		}
		if len(m.Value) > maxBatchBytes {
			t.Errorf("message of %d bytes exceeds %d", len(m.Value), maxBatchBytes)
		}
		got, _ := otlplogs.Unmarshal(nil, m.Value)
		msgs++
		total += len(got)
		tc.q.Commit(context.Background(), m)
	}
	if msgs < 2 || total != 40 {
		t.Errorf("got %d records in %d messages; want 40 in several", total, msgs)
	}
}
