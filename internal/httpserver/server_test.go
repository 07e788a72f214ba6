package httpserver

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/tlsconfig"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs s until the returned function is called, which checks that
// Run returned no error.
func run(t *testing.T, s *Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestOpsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	var ready Readiness
	mux := http.NewServeMux()
	AddOpsHandlers(mux, reg, &ready)
	s, err := Listen("test", "127.0.0.1:0", mux, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, s)()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before ready: got %d; want 503", code)
	}
	ready.Set(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: got %d; want 200", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "vigil_test_total 3") {
		t.Errorf("/metrics: got %d %q; want the counter", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: got %d; want 200", code)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: got %d", code)
	}
}

func TestListenTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t, tlstest.LeafOptions{}).Write(t, dir, "server")
	ts, err := tlsconfig.NewServer(tlsconfig.ServerFiles{CertFile: certFile, KeyFile: keyFile}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	AddOpsHandlers(mux, prometheus.NewRegistry(), nil)
	s, err := ListenTLS("test", "127.0.0.1:0", mux, ts.HTTPConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, s)()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("GET /healthz over TLS: %s %s; want 200 over HTTP/2", resp.Proto, resp.Status)
	}
	plain, err := http.Get("http://" + s.Addr() + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on a TLS listener")
		}
	}
}

// A request whose headers pass MaxHeaderBytes is refused with 431 before
// the handler runs; one under it is served.
func TestHeadersAreBounded(t *testing.T) {
	var served int
	s, err := Listen("test", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, s)()
	f := func(size, want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/", nil)
		req.Header.Set("X-Filler", strings.Repeat("a", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a %d-byte header: got %d, want %d", size, resp.StatusCode, want)
		}
	}
	f(MaxHeaderBytes/2, http.StatusOK)
	f(2*MaxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge)
	if served != 1 {
		t.Errorf("the handler ran %d times, want 1", served)
	}
}
