package childproc

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// The test binary doubles as the child: with CHILDPROC_TEST_LISTEN set it
// serves /readyz and /metrics there until SIGTERM.
func TestMain(m *testing.M) {
	if addr := os.Getenv("CHILDPROC_TEST_LISTEN"); addr != "" {
		serve(addr, os.Getenv("CHILDPROC_TEST_EXIT"))
		return
	}
	goleak.VerifyTestMain(m)
}

func serve(addr, exit string) {
	if exit != "" {
		fmt.Fprintln(os.Stderr, "refusing to start")
		os.Exit(3)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE x_total counter\nx_total{kind=\"a\"} 2\nx_total{kind=\"b\"} 3.5\nx_total_other 100\nx 7\n")
	})
	if cert := os.Getenv("CHILDPROC_TEST_TLS_CERT"); cert != "" {
		go func() { _ = http.ListenAndServeTLS(addr, cert, os.Getenv("CHILDPROC_TEST_TLS_KEY"), mux) }()
	} else {
		go func() { _ = http.ListenAndServe(addr, mux) }()
	}
	<-term
}

func child(t *testing.T, env ...string) *Process {
	t.Helper()
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	return &Process{Binary: os.Args[0], Env: append(os.Environ(), append(env, "CHILDPROC_TEST_LISTEN="+addr)...),
		Ready: addr, ReadyTimeout: 10 * time.Second, Stderr: &out}
}

func TestStartMetricStopRestartKill(t *testing.T) {
	p := child(t)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.Running() || p.Pid() == 0 {
		t.Fatalf("after Start: running %v, pid %d", p.Running(), p.Pid())
	}
	f := func(want float64, labels ...string) {
		t.Helper()
		got, err := Metric(p.Ready, "x_total", labels...)
		if err != nil || got != want {
			t.Errorf("Metric(x_total, %q) = %v, %v; want %v", labels, got, err, want)
		}
	}
	f(5.5)
	f(3.5, "kind", "b")
	f(0, "kind", "c")
	if rss, err := p.PeakRSS(); err != nil || rss <= 0 {
		t.Errorf("PeakRSS = %d, %v", rss, err)
	}
	if _, err := p.CPUSeconds(); err != nil {
		t.Errorf("CPUSeconds: %v", err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if err := p.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	p.Kill()
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("Stop of a stopped process: %v", err)
	}
}

func TestExitDuringStartUp(t *testing.T) {
	p := child(t, "CHILDPROC_TEST_EXIT=1")
	err := p.Start()
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") {
		t.Fatalf("Start: %v; want an exit during start-up", err)
	}
	if p.Running() {
		t.Fatal("running after a failed start")
	}
}

func TestNotReadyInTime(t *testing.T) {
	p := child(t)
	p.ReadyPath, p.ReadyTimeout = "/never", 300*time.Millisecond
	if err := p.Start(); err == nil || !strings.Contains(err.Error(), "not ready after 300ms") {
		t.Fatalf("Start: %v; want not ready", err)
	}
	if p.Running() {
		t.Fatal("a child that was not ready is still running")
	}
}

// TestReadyOverTLS starts a child that serves only TLS: it is ready when
// asked over HTTPS with ReadyTLS, and never over plain HTTP; MetricFrom
// reads its metrics over HTTPS.
func TestReadyOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "childproc test CA")
	cert, key := ca.Issue(t, tlstest.LeafOptions{}).Write(t, t.TempDir(), "server")
	env := []string{"CHILDPROC_TEST_TLS_CERT=" + cert, "CHILDPROC_TEST_TLS_KEY=" + key}

	plain := child(t, env...)
	plain.ReadyTimeout = 500 * time.Millisecond
	if err := plain.Start(); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("Start over plain HTTP of a TLS child: %v; want not ready", err)
	}

	p := child(t, env...)
	p.ReadyTLS = &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if err := p.Start(); err != nil {
		t.Fatalf("Start over TLS: %v", err)
	}
	defer p.Kill()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: p.ReadyTLS.Clone()}}
	defer c.CloseIdleConnections()
	if got, err := MetricFrom(c, "https://"+p.Ready+"/metrics", "x_total"); err != nil || got != 5.5 {
		t.Errorf("MetricFrom over TLS = %v, %v; want 5.5", got, err)
	}
}

func TestFreePortsAreReservedAndOutsideTheEphemeralRange(t *testing.T) {
	lo, hi := reservableRange()
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		for _, free := range []func() (string, error){FreePort, FreeUDPPort} {
			addr, err := free()
			if err != nil {
				t.Fatal(err)
			}
			if seen[addr] {
				t.Fatalf("%s handed out twice", addr)
			}
			seen[addr] = true
			_, ps, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(ps)
			if port < lo || port >= hi {
				t.Fatalf("%s outside [%d, %d)", addr, lo, hi)
			}
			// Another process's lock (here: another open file) keeps it
			// reserved.
			if f, ok := lockPort(port); ok {
				f.Close()
				t.Fatalf("%s: a second reservation was granted", addr)
			}
		}
	}
}
