package collector

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

const testKey = "0123456789abcdef0123456789abcdef"

// dumpsCollector is a collector serving the dumps intake on a loopback
// port, publishing to a real disk queue (or to producer when set).
type dumpsCollector struct {
	q    *diskqueue.Queue
	c    *Collector
	base string // http://127.0.0.1:port
	reg  *prometheus.Registry
}

func newDumpsCollector(t testing.TB, o DumpsOptions, producer queue.Producer) *dumpsCollector {
	t.Helper()
	dc := &dumpsCollector{reg: prometheus.NewRegistry()}
	if producer == nil {
		q := tempQueue(t)
		dc.q, producer = q, q
	}
	opts := DefaultOptions()
	opts.Listen = Addrs{Dumps: "127.0.0.1:0"}
	opts.Dumps = o
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Registerer = dc.reg
	c, err := New(opts, Queues{Logs: discardProducer{}, Dumps: producer})
	if err != nil {
		t.Fatal(err)
	}
	listenAndRun(t, c)
	dc.c, dc.base = c, "http://"+c.Addr("dumps")
	return dc
}

func keyed(keys ...string) DumpsOptions {
	o := DefaultDumpsOptions()
	o.Keys = keys
	return o
}

type discardProducer struct{}

func (discardProducer) Publish(context.Context, string, []byte) error { return nil }

type failingProducer struct{ err error }

func (p failingProducer) Publish(context.Context, string, []byte) error { return p.err }

// drain reads every queued dump, checking each record's key.
func (dc *dumpsCollector) drain(t *testing.T) []model.Dump {
	t.Helper()
	var out []model.Dump
	drainQueue(t, dc.q, func(m queue.Message) {
		var d model.Dump
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("queued value is not a model.Dump: %v", err)
		}
		if m.Key != d.Project {
			t.Errorf("record key %q; want the project %q", m.Key, d.Project)
		}
		out = append(out, d)
	})
	return out
}

// drainN drains the queue, expecting n dumps, and returns them by
// message, or by the type of their raised exception.
func (dc *dumpsCollector) drainN(t *testing.T, n int) map[string]model.Dump {
	t.Helper()
	ds := dc.drain(t)
	if len(ds) != n {
		t.Fatalf("queued %d dumps; want %d: %+v", len(ds), n, ds)
	}
	m := map[string]model.Dump{}
	for _, d := range ds {
		key := d.Message
		if len(d.Exceptions) > 0 {
			key = d.Exceptions[len(d.Exceptions)-1].Type
		}
		m[key] = d
	}
	return m
}

type response struct {
	code   int
	body   string
	header http.Header
}

func (dc *dumpsCollector) do(t *testing.T, method, path string, body []byte, hdr ...string) response {
	t.Helper()
	code, b, h := doRequest(t, method, dc.base+path, body, hdr...)
	return response{code, b, h}
}

func sentryAuth(key string) []string {
	return []string{"X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=test/1, sentry_key=" + key}
}

func envelope(header string, items ...string) []byte {
	return []byte(header + "\n" + strings.Join(items, "\n") + "\n")
}

func compress(t *testing.T, enc string, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	default:
		t.Fatal(enc)
	}
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

const evID = "9ec79c33ec9942ab8353589fcb2e04dc"

func eventItem(payload string) string {
	return fmt.Sprintf("{\"type\":\"event\",\"length\":%d}\n%s", len(payload), payload)
}

func TestDumpsAccepts(t *testing.T) {
	dc := newDumpsCollector(t, keyed(testKey, "boundkey/7"), nil)
	ev := `{"event_id":"` + evID + `","message":"hello","tags":{"service":"api"}}`
	f := func(name string, wantID string, r response) {
		t.Helper()
		if r.code != 200 {
			t.Fatalf("%s: got %d %s", name, r.code, r.body)
		}
		want := `{}`
		if wantID != "" {
			want = `{"id":"` + wantID + `"}`
		}
		if strings.TrimSpace(r.body) != want {
			t.Errorf("%s: body %s; want %s", name, r.body, want)
		}
		if r.header.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("%s: no CORS header", name)
		}
	}
	f("envelope, header auth", evID, dc.do(t, "POST", "/api/42/envelope/", envelope(`{}`, eventItem(ev)), sentryAuth(testKey)...))
	f("envelope, gzip, query auth", evID, dc.do(t, "POST", "/api/42/envelope/?sentry_key="+testKey+"&sentry_version=7",
		compress(t, "gzip", envelope(`{}`, eventItem(ev))), "Content-Encoding", "gzip"))
	f("envelope, deflate, DSN in the header", evID, dc.do(t, "POST", "/api/42/envelope/",
		compress(t, "deflate", envelope(`{"dsn":"http://`+testKey+`@localhost:8410/42"}`, "{\"type\":\"event\"}\n"+ev)), "Content-Encoding", "deflate"))
	f("key bound to its project", evID, dc.do(t, "POST", "/api/7/envelope/", envelope(`{}`, eventItem(ev)), sentryAuth("boundkey")...))
	f("only ignored items", evID, dc.do(t, "POST", "/api/42/envelope/",
		envelope(`{"event_id":"`+evID+`"}`, "{\"type\":\"session\"}\n{\"sid\":\"x\"}", "{\"type\":\"client_report\"}\n{}", "{\"type\":\"attachment\",\"length\":3}\nabc"), sentryAuth(testKey)...))
	f("empty envelope", "", dc.do(t, "POST", "/api/42/envelope/", []byte("{}\n"), sentryAuth(testKey)...))
	f("store", evID, dc.do(t, "POST", "/api/42/store/?sentry_key="+testKey, []byte(ev)))
	f("store, gzip", evID, dc.do(t, "POST", "/api/42/store/", compress(t, "gzip", []byte(ev)), append(sentryAuth(testKey), "Content-Encoding", "gzip")...))

	ds := dc.drain(t)
	if len(ds) != 6 {
		t.Fatalf("queued %d dumps; want 6 (one per event)", len(ds))
	}
	for _, d := range ds {
		if d.EventID != evID || d.Message != "hello" || d.Service != "api" || d.Received == 0 || d.IssueID != "" {
			t.Errorf("dump %+v", d)
		}
	}
	if got := testutil.ToFloat64(dc.c.dumps.items.WithLabelValues("session", "ignored")); got != 1 {
		t.Errorf("ignored sessions counted %v; want 1", got)
	}
	if got := testutil.ToFloat64(dc.c.dumps.items.WithLabelValues("event", "queued")); got != 6 {
		t.Errorf("queued events counted %v; want 6", got)
	}

	r := dc.do(t, "OPTIONS", "/api/42/envelope/", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type,x-sentry-auth")
	if r.code != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "x-sentry-auth") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", r.code, r.header)
	}
}

func TestDumpsRefuses(t *testing.T) {
	o := keyed(testKey, "boundkey/7")
	o.Limits.Event = 1 << 10
	o.Limits.EnvelopeCompressed = 64 << 10
	o.Limits.EnvelopeDecompressed = 256 << 10
	o.Limits.StoreCompressed = 1 << 10
	o.Limits.StoreDecompressed = 4 << 10
	dc := newDumpsCollector(t, o, nil)
	ok := `{"message":"m"}`
	bomb := compress(t, "gzip", envelope(`{}`, "{\"type\":\"attachment\"}\n"+strings.Repeat("0", 300<<10)))
	a := sentryAuth(testKey)
	for _, c := range []struct {
		name     string
		path     string
		body     []byte
		hdr      []string
		code     int
		reason   string
		detail   string
		receiver string
	}{
		{"no key", "/api/42/envelope/", envelope(`{}`, eventItem(ok)), nil, 401, "unauthorized", "missing authentication", receiverEnvelope},
		{"auth header without key", "/api/42/envelope/", envelope(`{}`, eventItem(ok)), []string{"X-Sentry-Auth", "Sentry sentry_version=7"}, 401, "unauthorized", "has no sentry_key", receiverEnvelope},
		{"wrong key", "/api/42/envelope/", envelope(`{}`, eventItem(ok)), sentryAuth("nope"), 403, "forbidden", `DSN key "nope" is not accepted`, receiverEnvelope},
		{"wrong project for the key", "/api/42/envelope/", envelope(`{}`, eventItem(ok)), sentryAuth("boundkey"), 403, "forbidden", "is for project 7, not project 42", receiverEnvelope},
		{"DSN of another project", "/api/42/envelope/", envelope(`{"dsn":"http://`+testKey+`@h/9"}`, eventItem(ok)), nil, 403, "forbidden", "DSN is for project 9", receiverEnvelope},
		{"project not a number", "/api/shop/envelope/", envelope(`{}`, eventItem(ok)), a, 400, "invalid", `project id "shop"`, receiverEnvelope},
		{"empty body", "/api/42/envelope/", nil, a, 400, "invalid", "the body is empty", receiverEnvelope},
		{"truncated", "/api/42/envelope/", []byte("{}\n{\"type\":\"event\",\"length\":40}\n{\"message\":"), a, 400, "invalid", "envelope item 1: truncated: header says length 40 but only 11 bytes follow", receiverEnvelope},
		{"wrong length", "/api/42/envelope/", envelope(`{}`, "{\"type\":\"event\",\"length\":3}\n"+ok), a, 400, "invalid", "envelope item 1: wrong length", receiverEnvelope},
		{"bad JSON event", "/api/42/envelope/", envelope(`{}`, eventItem(`{"message":}`)), a, 400, "invalid", "envelope item 1: event: invalid JSON", receiverEnvelope},
		{"bad header JSON", "/api/42/envelope/", []byte("{\"event_id\":\n"), a, 400, "invalid", "envelope header: not a JSON object", receiverEnvelope},
		{"bad event id", "/api/42/envelope/", envelope(`{}`, eventItem(`{"event_id":"42","message":"m"}`)), a, 400, "invalid", `event_id "42" is not a UUID`, receiverEnvelope},
		{"huge event item", "/api/42/envelope/", envelope(`{}`, "{\"type\":\"event\",\"length\":5000}\n"+strings.Repeat("x", 5000)), a, 413, "too_large", "envelope item 1 (event) of length 5000 exceeds Sentry's limit of 1 KiB", receiverEnvelope},
		{"envelope too large", "/api/42/envelope/", envelope(`{}`, "{\"type\":\"attachment\"}\n"+strings.Repeat("x", 70<<10)), a, 413, "too_large", "envelope exceeds Sentry's limit of 64 KiB", receiverEnvelope},
		{"decompression bomb", "/api/42/envelope/", bomb, append([]string{"Content-Encoding", "gzip"}, a...), 413, "too_large", "envelope (decompressed) exceeds Sentry's limit of 256 KiB", receiverEnvelope},
		{"corrupt gzip", "/api/42/envelope/", []byte("not gzip at all"), append([]string{"Content-Encoding", "gzip"}, a...), 400, "invalid", "the body is not valid gzip", receiverEnvelope},
		{"brotli", "/api/42/envelope/", []byte("x"), append([]string{"Content-Encoding", "br"}, a...), 415, "unsupported_encoding", `Content-Encoding "br" is not supported`, receiverEnvelope},
		{"store without key", "/api/42/store/", []byte(ok), nil, 401, "unauthorized", "missing authentication", receiverStore},
		{"store bad JSON", "/api/42/store/", []byte(`{"message"`), a, 400, "invalid", "event: invalid JSON", receiverStore},
		{"store not JSON", "/api/42/store/", []byte(`hello`), a, 400, "invalid", "neither a JSON object nor base64", receiverStore},
		{"store too large", "/api/42/store/", []byte(`{"message":"` + strings.Repeat("x", 5<<10) + `"}`), a, 413, "too_large", "store request exceeds Sentry's limit of 4 KiB", receiverStore},
		{"store compressed too large", "/api/42/store/", compress(t, "gzip", noise(3<<10)), append([]string{"Content-Encoding", "gzip"}, a...), 413, "too_large", "store request (compressed) exceeds Sentry's limit of 1 KiB", receiverStore},
	} {
		before := testutil.ToFloat64(dc.c.httpMetrics.rejected.WithLabelValues(c.receiver, c.reason))
		r := dc.do(t, "POST", c.path, c.body, c.hdr...)
		if r.code != c.code {
			t.Errorf("%s: got %d %s; want %d", c.name, r.code, r.body, c.code)
			continue
		}
		var body struct{ Detail string }
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || !strings.Contains(body.Detail, c.detail) {
			t.Errorf("%s: body %s; want a detail containing %q", c.name, r.body, c.detail)
		}
		if r.header.Get("X-Sentry-Error") != body.Detail {
			t.Errorf("%s: X-Sentry-Error %q", c.name, r.header.Get("X-Sentry-Error"))
		}
		if got := testutil.ToFloat64(dc.c.httpMetrics.rejected.WithLabelValues(c.receiver, c.reason)) - before; got != 1 {
			t.Errorf("%s: rejected{%s,%s} grew by %v; want 1", c.name, c.receiver, c.reason, got)
		}
	}
	if ds := dc.drain(t); len(ds) != 0 {
		t.Errorf("refused requests queued %d dumps", len(ds))
	}
}

func TestDumpsNoKeys(t *testing.T) {
	dc := newDumpsCollector(t, DefaultDumpsOptions(), nil)
	r := dc.do(t, "POST", "/api/1/store/", []byte(`{"message":"m"}`), sentryAuth(testKey)...)
	if r.code != 401 || !strings.Contains(r.body, "--dumps.keys") {
		t.Errorf("got %d %s; want 401 naming --dumps.keys", r.code, r.body)
	}
}

func TestDumpsQueueFailures(t *testing.T) {
	ev := envelope(`{}`, eventItem(`{"message":"m"}`))
	full := newDumpsCollector(t, keyed(testKey), failingProducer{queue.ErrFull})
	r := full.do(t, "POST", "/api/1/envelope/", ev, sentryAuth(testKey)...)
	if r.code != 429 || r.header.Get("Retry-After") != "2" || r.header.Get("X-Sentry-Rate-Limits") != "2::organization:queue_full" {
		t.Errorf("queue full: got %d %v %s", r.code, r.header, r.body)
	}
	broken := newDumpsCollector(t, keyed(testKey), failingProducer{errors.New("disk on fire")})
	r = broken.do(t, "POST", "/api/1/envelope/", ev, sentryAuth(testKey)...)
	if r.code != 503 || strings.Contains(r.body, `"id"`) {
		t.Errorf("queue error: got %d %s; want 503 without an id", r.code, r.body)
	}
	big := newDumpsCollector(t, keyed(testKey), failingProducer{fmt.Errorf("record of 2 MiB: %w", queue.ErrTooLarge)})
	if r = big.do(t, "POST", "/api/1/envelope/", ev, sentryAuth(testKey)...); r.code != 413 {
		t.Errorf("queue too large: got %d %s; want 413", r.code, r.body)
	}
}

// noise returns n bytes that do not compress.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return b
}
