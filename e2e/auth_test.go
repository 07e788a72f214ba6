//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sentrygo "github.com/getsentry/sentry-go"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promconfig "github.com/prometheus/common/config"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
)

// Keys of TestAuth's tenants.
const (
	authWriter = "team-a-writer-7f3c"
	authReader = "team-a-reader-91be"
	authOther  = "team-b-key-2d44"
	authDSN    = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
)

func sha(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// statusRecorder remembers the status codes a client got.
type statusRecorder struct {
	mu    sync.Mutex
	codes []int
	rt    http.RoundTripper
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.codes = append(s.codes, resp.StatusCode)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *statusRecorder) all() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.codes...)
}

// authRequest sends a request to addr with the headers given in pairs.
func authRequest(t *testing.T, method, url string, body []byte, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAuth runs all-in-one with --auth.config and checks each credential
// form with the real clients: curl-like requests with Bearer and
// Grafana-style basic auth, the Prometheus API client, sentry-go and the
// OpenTelemetry SDK's OTLP/gRPC exporter.
func TestAuth(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`tenants:
  team-a:
    keys:
      - sha256: %q
        scopes: [write]
      - sha256: %q
        scopes: [read]
    sentry_keys:
      - key: %s
        project: "42"
    limits: {ingestion_rate: 50000, ingestion_burst: 100000}
  team-b:
    keys:
      - sha256: %q
        scopes: [write, read]
`, sha(authWriter), sha(authReader), authDSN, sha(authOther))), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAllInOne(t, filepath.Join(dir, "data"), "--auth.config", conf)
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	logs := "http://" + p.collector + "/api/v1/logs"
	line := []byte(`{"service":"auth-e2e","level":"info","message":"hello tenant a"}`)

	// Writes: no key 401 with a basic challenge, a read key 403, the
	// write key accepted.
	code, h, body := authRequest(t, "POST", logs, line)
	if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="vigil"` || !strings.Contains(body, "missing credentials") {
		t.Fatalf("write without a key: got %d %q %s; want 401 with a basic challenge", code, h.Get("WWW-Authenticate"), body)
	}
	if code, _, body := authRequest(t, "POST", logs, line, bearer(authReader)...); code != 403 || !strings.Contains(body, "may read, not write") {
		t.Fatalf("write with a read key: got %d %s; want 403", code, body)
	}
	if code, _, body := authRequest(t, "POST", logs, line, bearer(authWriter)...); code != 200 {
		t.Fatalf("write with the write key: got %d %s; want 200", code, body)
	}

	// Reads through the Loki API: the read key (Bearer, and basic auth as
	// Grafana's data sources send it) finds the line; no key is 401.
	q := "http://" + p.query + "/loki/api/v1/query_range?query=" + strings.ReplaceAll(`{service="auth-e2e"}`, `"`, "%22")
	eventually(t, 20*time.Second, "the line readable with the read key", func() (bool, string) {
		code, _, body := authRequest(t, "GET", q, nil, bearer(authReader)...)
		return code == 200 && strings.Contains(body, "hello tenant a"), fmt.Sprintf("%d %s", code, body)
	})
	req, _ := http.NewRequest("GET", q, nil)
	req.SetBasicAuth("team-a", authReader)
	req.Header.Set("X-Scope-OrgID", "team-a") // Grafana's Loki data source with a tenant header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "hello tenant a") {
		t.Fatalf("Grafana-style basic auth: got %d %s", resp.StatusCode, b)
	}
	if code, _, _ := authRequest(t, "GET", q, nil); code != 401 {
		t.Fatalf("read without a key: got %d; want 401", code)
	}
	if code, _, _ := authRequest(t, "GET", q, nil, append(bearer(authReader), "X-Scope-OrgID", "team-b")...); code != 403 {
		t.Fatalf("read with team-a's key naming team-b: got %d; want 403", code)
	}
	// Operational endpoints and the UI's static files stay open.
	for _, u := range []string{"http://" + p.query + "/metrics", "http://" + p.query + "/", "http://" + p.federation + "/readyz"} {
		if code, _, _ := authRequest(t, "GET", u, nil); code != 200 {
			t.Errorf("GET %s without a key: got %d; want 200", u, code)
		}
	}

	// The Prometheus API client reads the federation with a key in basic
	// auth, and is refused without.
	promQuery := func(rt http.RoundTripper) error {
		c, err := promapi.NewClient(promapi.Config{Address: "http://" + p.federation, RoundTripper: rt})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, _, _, err := promv1.NewAPI(c).Query(ctx, "vector(7)", time.Now())
		if err == nil && !strings.Contains(v.String(), "7") {
			return fmt.Errorf("got %v; want 7", v)
		}
		return err
	}
	basicRT := promconfig.NewBasicAuthRoundTripper(promconfig.NewInlineSecret("team-a"), promconfig.NewInlineSecret(authReader), promapi.DefaultRoundTripper)
	if err := promQuery(basicRT); err != nil {
		t.Fatalf("Prometheus API client with the read key: %v", err)
	}
	var promErr *promv1.Error
	if err := promQuery(promapi.DefaultRoundTripper); !errors.As(err, &promErr) || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "missing credentials") {
		t.Fatalf("Prometheus API client without a key: got %v; want a 401 refusal", err)
	}

	// sentry-go with a configured DSN key is accepted (and its issue is
	// readable with the read key); with an unknown key refused.
	sendSentry := func(dsn string) []int {
		rec := &statusRecorder{rt: &http.Transport{}}
		client, err := sentrygo.NewClient(sentrygo.ClientOptions{Dsn: dsn, HTTPClient: &http.Client{Transport: rec}})
		if err != nil {
			t.Fatal(err)
		}
		hub := sentrygo.NewHub(client, sentrygo.NewScope())
		hub.Scope().SetTag("service", "auth-e2e")
		hub.CaptureException(chargeCard())
		if !client.Flush(20 * time.Second) {
			t.Fatal("sentry-go did not deliver its event within 20s")
		}
		client.Close()
		return rec.all()
	}
	if got := sendSentry("http://" + authDSN + "@" + p.dumps + "/42"); len(got) != 1 || got[0] != 200 {
		t.Fatalf("sentry-go with the tenant's DSN key: got statuses %v; want [200]", got)
	}
	if got := sendSentry("http://ffffffffffffffffffffffffffffffff@" + p.dumps + "/42"); len(got) != 1 || got[0] != 401 {
		t.Fatalf("sentry-go with an unknown DSN key: got statuses %v; want [401]", got)
	}
	eventually(t, 20*time.Second, "the dump readable with the read key", func() (bool, string) {
		code, _, body := authRequest(t, "GET", "http://"+p.query+"/vigil/api/v1/dumps/issues", nil, bearer(authReader)...)
		return code == 200 && strings.Contains(body, "auth-e2e"), fmt.Sprintf("%d %s", code, body)
	})

	// OTLP/gRPC with the key in metadata: accepted, readable through the
	// Jaeger API with the read key; without it refused.
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + authWriter}))
	if err != nil {
		t.Fatal(err)
	}
	rec := otelTrace(t, exp, "otel-grpc-auth")
	traceID := rec.Ended()[0].SpanContext().TraceID().String()
	eventually(t, 20*time.Second, "the trace readable with the read key", func() (bool, string) {
		code, _, body := authRequest(t, "GET", "http://"+p.query+"/api/traces/"+traceID, nil, bearer(authReader)...)
		var r struct{ Data []json.RawMessage }
		_ = json.Unmarshal([]byte(body), &r)
		return code == 200 && len(r.Data) == 1, fmt.Sprintf("%d %s", code, body)
	})
	noKey, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.otlpGRPC), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	if err := noKey.ExportSpans(ctx, rec.Ended()); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("OTLP/gRPC without a key: got %v; want Unauthenticated", err)
	}
	_ = noKey.Shutdown(ctx)

	// Key rotation by editing the file, without a restart: the new read
	// key works, the old one stops; a broken file keeps the keys in effect.
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	const rotated = "team-a-reader-rotated-55aa"
	replaceFile := func(content string) {
		tmp := conf + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	replaceFile(strings.Replace(string(orig), sha(authReader), sha(rotated), 1))
	eventually(t, 20*time.Second, "the rotated key accepted", func() (bool, string) {
		code, _, body := authRequest(t, "GET", q, nil, bearer(rotated)...)
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	if code, _, _ := authRequest(t, "GET", q, nil, bearer(authReader)...); code != 401 {
		t.Fatalf("the replaced key after the reload: got %d; want 401", code)
	}
	replaceFile("tenants:\n  team-a:\n    keys: [{sha256: short, scopes: [read]}]\n")
	eventually(t, 20*time.Second, "the broken file reported", func() (bool, string) {
		v := metric(t, p.query, "vigil_auth_config_last_reload_successful")
		return v == 0, fmt.Sprint(v)
	})
	if code, _, _ := authRequest(t, "GET", q, nil, bearer(rotated)...); code != 200 {
		t.Fatalf("after a broken file: got %d; want the keys in effect to keep working", code)
	}

	// Every refusal and acceptance is counted by reason.
	for _, reason := range []string{"missing", "scope", "tenant", "invalid_key"} {
		if metric(t, p.query, "vigil_auth_refused_total", "reason", reason) < 1 {
			t.Errorf("vigil_auth_refused_total{reason=%q} not counted", reason)
		}
	}
	if metric(t, p.query, "vigil_auth_accepted_total") < 5 {
		t.Errorf("vigil_auth_accepted_total: got %v; want the accepted requests", metric(t, p.query, "vigil_auth_accepted_total"))
	}
}
