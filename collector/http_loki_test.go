package collector

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
)

// A request built with Loki's own push types (github.com/grafana/loki/pkg/push,
// what Promtail and Alloy marshal) is accepted with 204 and queued with its
// labels and structured metadata.
func TestLokiPushProtobuf(t *testing.T) {
	tc := newTestCollector(t, 0)
	ts := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	req := push.PushRequest{Streams: []push.Stream{
		{Labels: `{job="varlogs", filename="/var/log/syslog", host="web-1", level="error"}`, Entries: []push.Entry{
			{Timestamp: ts, Line: "disk full", StructuredMetadata: push.LabelsAdapter{
				{Name: "trace_id", Value: "4bf92f3577b34da6a3ce929d0e0e4736"}, {Name: "user_id", Value: "42"},
			}},
			{Timestamp: ts.Add(-time.Minute), Line: "earlier, out of order"},
		}},
		{Labels: `{service_name="checkout"}`, Entries: []push.Entry{{Timestamp: ts, Line: "paid"}}},
	}}
	pb, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Content-Encoding: snappy is what some clients add; the body is the same.
	code, body, _ := tc.post(t, "/loki/api/v1/push", "application/x-protobuf", snappy.Encode(nil, pb), "Content-Encoding", "snappy")
	if code != http.StatusNoContent || body != "" {
		t.Fatalf("got %d %q; want 204 and no body", code, body)
	}
	recs := tc.drain(t)
	if len(recs) != 3 {
		t.Fatalf("queued %d records; want 3", len(recs))
	}
	r := find(t, recs, "disk full")
	if r.Service != "varlogs" || r.Host != "web-1" || r.Level != "error" || r.Source != "loki" || r.Timestamp != ts.UnixNano() ||
		r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || r.ID.IsZero() {
		t.Errorf("got %+v", r)
	}
	for _, kv := range [][2]string{{"job", "varlogs"}, {"filename", "/var/log/syslog"}, {"user_id", "42"}} {
		if v, ok := r.Attr(kv[0]); !ok || v != kv[1] {
			t.Errorf("attribute %s = %q, %v; want %q", kv[0], v, ok, kv[1])
		}
	}
	if r := find(t, recs, "earlier, out of order"); r.Timestamp != ts.Add(-time.Minute).UnixNano() {
		t.Errorf("out-of-order line: got timestamp %d", r.Timestamp)
	}
	if r := find(t, recs, "paid"); r.Service != "checkout" {
		t.Errorf("service_name: got service %q", r.Service)
	}
	if got := testutil.ToFloat64(tc.c.httpMetrics.received.WithLabelValues("loki_push")); got != 3 {
		t.Errorf("received_records_total{receiver=loki_push} = %v; want 3", got)
	}
}

// Promtail's JSON push, plain, gzip- and deflate-encoded as Fluent Bit and
// Vector can send it.
func TestLokiPushJSON(t *testing.T) {
	tc := newTestCollector(t, 0)
	body := `{"streams":[{"stream":{"app":"shop","env":"prod"},"values":[
		["1714564800000000000","plain"],
		["1714564801000000000","with metadata",{"span_id":"00f067aa0ba902b7","detected_level":"warn","order":"7"}]]}]}`
	var z, fl bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(body))
	zw.Close()
	fw, _ := flate.NewWriter(&fl, flate.DefaultCompression)
	fw.Write([]byte(body))
	fw.Close()
	for _, send := range []struct {
		body []byte
		hdr  []string
	}{{[]byte(body), nil}, {z.Bytes(), []string{"Content-Encoding", "gzip"}}, {fl.Bytes(), []string{"Content-Encoding", "deflate"}}} {
		if code, resp, _ := tc.post(t, "/loki/api/v1/push", "application/json; charset=utf-8", send.body, send.hdr...); code != http.StatusNoContent {
			t.Fatalf("got %d %s", code, resp)
		}
	}
	recs := tc.drain(t)
	if len(recs) != 6 {
		t.Fatalf("queued %d records; want 6", len(recs))
	}
	r := find(t, recs, "with metadata")
	if r.Service != "shop" || r.Env != "prod" || r.Level != "warn" || r.SpanID != "00f067aa0ba902b7" || r.Timestamp != 1714564801000000000 {
		t.Errorf("got %+v", r)
	}
	if v, _ := r.Attr("order"); v != "7" {
		t.Errorf("structured metadata order = %q; want 7", v)
	}
}

// Bad input gets Loki's status code and a message naming the problem, is
// counted, and queues nothing (but the valid part of a partly invalid
// request, as Loki does).
func TestLokiPushBadInput(t *testing.T) {
	tc := newTestCollector(t, 0)
	line := func(labels, text string) []byte {
		req := push.PushRequest{Streams: []push.Stream{{Labels: labels, Entries: []push.Entry{{Timestamp: time.Now(), Line: text}}}}}
		pb, _ := req.Marshal()
		return snappy.Encode(nil, pb)
	}
	f := func(name, ct string, body []byte, wantCode int, wantMsg string, hdr ...string) {
		t.Helper()
		code, resp, h := tc.post(t, "/loki/api/v1/push", ct, body, hdr...)
		if code != wantCode || !strings.Contains(resp, wantMsg) {
			t.Errorf("%s: got %d %q; want %d and %q", name, code, resp, wantCode, wantMsg)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q; want Loki's plain-text errors", name, ct)
		}
	}
	pb := "application/x-protobuf"
	f("bad snappy", pb, []byte("not snappy at all"), 400, "snappy: corrupt input")
	f("bad protobuf", pb, snappy.Encode(nil, []byte{0x0a, 0x05, 0x01}), 400, "proto: PushRequest: field 1: unexpected EOF")
	f("no streams", pb, snappy.Encode(nil, nil), 422, "error at least one valid stream is required for ingestion")
	f("missing labels", pb, line("", "x"), 400, "error at least one label pair is required per stream")
	f("invalid labels", pb, line(`{job=varlogs}`, "x"), 400, `couldn't parse labels '{job=varlogs}': 1:6: parse error`)
	f("line too long", pb, line(`{job="a"}`, strings.Repeat("x", 256001)), 400, `max entry size '256000' bytes exceeded for stream '{job="a"}' while adding an entry with length '256001' bytes`)
	f("body too large", pb, make([]byte, 2<<20), 413, "request body too large")
	f("decoded too large", pb, line(`{job="a"}`, strings.Repeat("x", 2<<20)), 413, "request body too large: decompressed message size too large than max")
	f("bad JSON", "application/json", []byte(`{"streams":[{"stream":{"a":"b"},"values":[[1]]}]}`), 400, "streams[0].values[0]: want 2 or 3 values")
	f("bad encoding", pb, line(`{a="b"}`, "x"), 400, `unsupported Content-Encoding "br"`, "Content-Encoding", "br")
	f("bad content type", "application/;;", line(`{a="b"}`, "x"), 400, `Content-Type "application/;;"`)
	if recs := tc.drain(t); len(recs) != 0 {
		t.Errorf("bad requests queued %d records", len(recs))
	}

	// The valid stream of a partly invalid request is kept.
	req := push.PushRequest{Streams: []push.Stream{
		{Labels: `{job="ok"}`, Entries: []push.Entry{{Timestamp: time.Now(), Line: "kept"}}},
		{Labels: `{job=bad}`, Entries: []push.Entry{{Timestamp: time.Now(), Line: "refused"}}},
	}}
	b, _ := req.Marshal()
	f("partly invalid", pb, snappy.Encode(nil, b), 400, "couldn't parse labels '{job=bad}'")
	if recs := tc.drain(t); len(recs) != 1 || recs[0].Message != "kept" {
		t.Errorf("partly invalid request: queued %+v; want the valid line only", recs)
	}

	if got := testutil.ToFloat64(tc.c.httpMetrics.rejected.WithLabelValues("loki_push", "invalid")); got != 10 {
		t.Errorf("rejected_records_total{receiver=loki_push,reason=invalid} = %v; want 10", got)
	}
	if got := testutil.ToFloat64(tc.c.httpMetrics.rejected.WithLabelValues("loki_push", "too_large")); got != 2 {
		t.Errorf("rejected_records_total{receiver=loki_push,reason=too_large} = %v; want 2", got)
	}
}

// A full queue answers 429 with Retry-After, so shippers back off and
// resend.
func TestLokiPushQueueFull(t *testing.T) {
	tc := newTestCollector(t, 4096)
	req := push.PushRequest{Streams: []push.Stream{{Labels: `{job="a"}`}}}
	for i := 0; i < 10; i++ {
		req.Streams[0].Entries = append(req.Streams[0].Entries, push.Entry{Timestamp: time.Now(), Line: strings.Repeat("y", 100)})
	}
	b, _ := req.Marshal()
	var code int
	var hdr http.Header
	for i := 0; i < 20 && code != http.StatusTooManyRequests; i++ {
		code, _, hdr = tc.post(t, "/loki/api/v1/push", "application/x-protobuf", snappy.Encode(nil, b))
	}
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("got %d, Retry-After %q; want 429 with Retry-After", code, hdr.Get("Retry-After"))
	}
}

func find(t *testing.T, recs []model.LogRecord, msg string) model.LogRecord {
	t.Helper()
	for _, r := range recs {
		if r.Message == msg {
			return r
		}
	}
	t.Fatalf("no record %q", msg)
	return model.LogRecord{}
}
