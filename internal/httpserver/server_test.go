package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

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
