//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// TestBadInput sends every kind of bad input a client can produce and
// checks each gets a precise 4xx, is counted in /metrics, and that good data
// sent beside it still arrives.
func TestBadInput(t *testing.T) {
	p := startAllInOne(t, filepath.Join(t.TempDir(), "data"), "--collector.http.max-body-bytes", "65536")
	f := func(name, path, ct string, body []byte, wantCode int, wantBody string, headers ...string) {
		t.Helper()
		code, resp := p.post(path, ct, body, headers...)
		if code != wantCode || !strings.Contains(resp, wantBody) {
			t.Errorf("%s: got %d %q; want %d with %q", name, code, resp, wantCode, wantBody)
		}
	}
	nd := "application/x-ndjson"
	f("malformed NDJSON", "/api/v1/logs", nd, []byte("{\"message\":\"ok\"}\n{\"message\": oops}\n"), 400, `line 2: invalid JSON`)
	f("wrong type", "/api/v1/logs", nd, []byte(`{"message":"ok","grade":"high"}`), 400, `line 1: field \"grade\": want an integer from 1 to 4`)
	f("missing message", "/api/v1/logs", nd, []byte(`{"level":"info"}`), 400, `field \"message\": required field is missing`)
	f("bad timestamp", "/api/v1/logs", nd, []byte(`{"message":"x","timestamp":"yesterday"}`), 400, `cannot parse \"yesterday\" as RFC 3339`)
	f("invalid UTF-8", "/api/v1/logs", nd, []byte("{\"message\":\"\xff\xfe\"}"), 400, `line 1: not valid UTF-8`)
	f("binary garbage", "/api/v1/logs", nd, []byte{0x00, 0x9f, 0x92, 0x96, 0x01, 0x02}, 400, `line 1:`)
	f("empty body", "/api/v1/logs", nd, nil, 400, `no records`)
	f("oversized body", "/api/v1/logs", nd, bytes.Repeat([]byte(`{"message":"0123456789abcdef"}`+"\n"), 4000), 413, `exceeds 65536 bytes`)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(bytes.Repeat([]byte(`{"message":"0123456789abcdef"}`+"\n"), 40000))
	zw.Close()
	f("gzip bomb", "/api/v1/logs", nd, zipped.Bytes(), 413, `exceeds 65536 bytes`, "Content-Encoding", "gzip")
	f("bad gzip", "/api/v1/logs", nd, []byte("not gzip"), 400, `cannot read gzip body`, "Content-Encoding", "gzip")
	f("OTLP garbage", "/v1/logs", "application/x-protobuf", []byte{0xff, 0xff, 0xff}, 400, `cannot decode OTLP logs protobuf`)
	f("OTLP bad JSON", "/v1/logs", "application/json", []byte(`{"resourceLogs":[{]`), 400, `cannot decode OTLP logs JSON`)
	f("OTLP content type", "/v1/logs", "text/plain", []byte(`x`), 415, `unsupported Content-Type`)

	// Good data still flows: NDJSON, gzip'ed NDJSON, OTLP protobuf and JSON.
	f("good NDJSON", "/api/v1/logs", nd, []byte(`{"service":"good","message":"plain good line"}`), 200, `"accepted":1`)
	zipped.Reset()
	zw = gzip.NewWriter(&zipped)
	zw.Write([]byte(`[{"service":"good","message":"zipped good line"}]`))
	zw.Close()
	f("good gzip", "/api/v1/logs", "application/json", zipped.Bytes(), 200, `"accepted":1`, "Content-Encoding", "gzip")
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "good")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("otlp good line")
	lr.SetSeverityText("WARN")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	req := plogotlp.NewExportRequestFromLogs(ld)
	pb, _ := req.MarshalProto()
	f("good OTLP protobuf", "/v1/logs", "application/x-protobuf", pb, 200, "")
	lr.Body().SetStr("otlp json good line")
	js, _ := req.MarshalJSON()
	f("good OTLP JSON", "/v1/logs", "application/json", js, 200, "{")

	eventually(t, 20*time.Second, "good lines queryable", func() (bool, string) {
		n := p.countLines(`{service="good"} |= "good line"`, 100)
		return n == 4, "found " + itoa(n)
	})
	ss := p.streams(`{service="good", source="otlp"}`, 100)
	if len(ss) != 1 || ss[0].Stream["level"] != "warn" {
		t.Errorf("OTLP stream: got %+v; want one stream with level warn", ss)
	}

	// LogQL errors name the position.
	for _, q := range []string{`{service="good"`, `{service="good"} |= `, `sum by (service) (count_over_time({service="good"}))`} {
		code, body, _ := p.queryRange(q)
		if code != 400 || !strings.Contains(body, "parse error at line 1, col ") {
			t.Errorf("query %q: got %d %q; want 400 with the error position", q, code, body)
		}
	}
	if code, body, _ := p.queryRange(`{service="good"}`, "limit", "999999"); code != 400 || !strings.Contains(body, "max entries limit") {
		t.Errorf("huge limit: got %d %q; want 400", code, body)
	}
	if code, body, _ := p.queryRange(`{service="good"}`, "start", "yesterday"); code != 400 || !strings.Contains(body, `invalid start "yesterday"`) {
		t.Errorf("bad start: got %d %q; want 400", code, body)
	}

	// Everything was counted, and the daemon is still serving.
	if got := metric(t, p.collector, "vigil_collector_rejected_records_total", "receiver", "logs_api", "reason", "invalid"); got < 9 {
		t.Errorf("rejected invalid records: got %v; want at least 9", got)
	}
	if got := metric(t, p.collector, "vigil_collector_rejected_records_total", "reason", "too_large"); got != 2 {
		t.Errorf("rejected too-large requests: got %v; want 2", got)
	}
	if got := metric(t, p.collector, "vigil_collector_rejected_records_total", "receiver", "otlp_http_logs"); got != 3 {
		t.Errorf("rejected OTLP requests: got %v; want 3", got)
	}
	if got := metric(t, p.query, "vigil_query_requests_total", "endpoint", "query_range", "code", "400"); got != 5 {
		t.Errorf("query 400s: got %v; want 5", got)
	}
	if code, _, _ := p.get("/readyz"); code != 200 {
		t.Errorf("/readyz after bad input: got %d", code)
	}
}

// TestQueueFullBackpressure fills a tiny queue behind a throttled ingester
// and checks the intake answers 429 with Retry-After, counts it, and loses
// nothing it accepted.
func TestQueueFullBackpressure(t *testing.T) {
	p := startAllInOne(t, filepath.Join(t.TempDir(), "data"),
		"--queue.max-bytes", "200000", "--ingester.max-records-per-second", "200", "--ingester.batch.max-records", "200")
	line := `{"service":"bp","message":"backpressure ` + strings.Repeat("y", 150) + ` n=%d"}` + "\n"
	accepted, throttled := 0, 0
	var retryAfter string
	for i := 0; i < 60 && throttled == 0; i++ {
		var b strings.Builder
		for j := 0; j < 300; j++ {
			b.WriteString(strings.Replace(line, "%d", itoa(i*300+j), 1))
		}
		req := []byte(b.String())
		resp, err := httpPost("http://"+p.collector+"/api/v1/logs", req)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case 200:
			accepted += 300
		case 429:
			throttled++
			retryAfter = resp.Header.Get("Retry-After")
		default:
			t.Fatalf("unexpected status %d", resp.StatusCode)
		}
	}
	if throttled == 0 || retryAfter == "" {
		t.Fatalf("got no 429 with Retry-After after %d accepted lines", accepted)
	}
	if got := metric(t, p.collector, "vigil_collector_rejected_records_total", "reason", "queue_full"); got < 300 {
		t.Errorf("queue_full rejections: got %v; want at least 300", got)
	}
	eventually(t, 60*time.Second, "accepted lines stored", func() (bool, string) {
		n := p.countLines(`{service="bp"}`, 5000)
		return n == accepted, itoa(n) + " of " + itoa(accepted)
	})
}
