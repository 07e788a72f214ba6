package federation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/prompb"
)

// binary returns the path of a third-party server the test runs, skipping
// the test when it is missing, or failing it when VIGIL_REQUIRE_SERVICES=1
// (deploy/local/deps.sh installs them).
func binary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is required (VIGIL_REQUIRE_SERVICES=1) but not installed: run deploy/local/deps.sh", name)
		}
		t.Skipf("%s is not installed (deploy/local/deps.sh installs it)", name)
	}
	return p
}

func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := childproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startProcess runs a server until the test ends, and waits for url to
// answer 200.
func startProcess(t testing.TB, url string, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	waitFor(t, 30*time.Second, func() error {
		select {
		case <-done:
			return fmt.Errorf("%s exited: %s", name, out.String())
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// startPrometheus runs the real Prometheus with config on a free port and
// returns its URL.
func startPrometheus(t testing.TB, config string, flags ...string) string {
	t.Helper()
	bin := binary(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn"}, flags...)
	startProcess(t, "http://"+addr+"/-/ready", bin, args...)
	return "http://" + addr
}

// testFed is a Federation served on a loopback port.
type testFed struct {
	*Federation
	url, addr, dir, config string
	reg                    *prometheus.Registry
	mux                    *http.ServeMux // its handlers, unguarded
}

// startFed runs a Federation with config (in which $SELF stands for its own
// address) in dir until the test ends.
func startFed(t testing.TB, dir, config string) *testFed {
	t.Helper()
	return startFedWith(t, dir, config, nil)
}

// startFedWith is startFed with options changed by opt.
func startFedWith(t testing.TB, dir, config string, opt func(*Options)) *testFed {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tf := &testFed{addr: l.Addr().String(), dir: dir, reg: prometheus.NewRegistry()}
	tf.url = "http://" + tf.addr
	tf.config = filepath.Join(t.TempDir(), "federation.yml")
	if err := os.WriteFile(tf.config, bytes.ReplaceAll([]byte(config), []byte("$SELF"), []byte(tf.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.ConfigFile, o.Dir, o.Registerer, o.Gatherer = tf.config, dir, tf.reg, tf.reg
	o.TargetReloadInterval, o.ReloadInterval = 200*time.Millisecond, 200*time.Millisecond
	if opt != nil {
		opt(&o)
	}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	f, err := New(o)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	tf.Federation = f
	mux := http.NewServeMux()
	f.RegisterHTTP(mux)
	mux.Handle("/metrics", promhttpHandler(tf.reg))
	tf.mux = mux
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { _ = f.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		_ = srv.Close()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return tf
}

// exposition serves body as a /metrics endpoint.
func exposition(t testing.TB, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func hostOf(s *httptest.Server) string { return s.Listener.Addr().String() }

func client(t *testing.T, url string) promv1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c)
}

func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// remoteWrite sends series in remote write 1.0 to url and returns the
// status and body of the answer.
func remoteWrite(t *testing.T, url string, ts []prompb.TimeSeries) (int, string) {
	t.Helper()
	b, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return postRemoteWrite(t, url, snappy.Encode(nil, b))
}

func postRemoteWrite(t testing.TB, url string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/v1/write", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sortStrings(s []string) { sort.Strings(s) }
