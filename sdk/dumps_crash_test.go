package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sdk"
	"github.com/vigilhq/vigil/sdk/dump/dumptest"
)

// crashChild is a service on sdk.Init (DSN, spool and watching from the
// environment) that dies of "fatal error: concurrent map writes", which
// recover cannot catch.
func crashChild() {
	_, err := sdk.Init(sdk.Config{
		Service: "shop", Grade: 2, Env: "test", Version: "v1.4.1", Host: "h1",
		TracesDisabled: true, NoGlobals: true, DumpsInApp: []string{testPkg}, LogOutput: io.Discard,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	go parkedWorker(make(chan struct{}))
	waitParked("parkedWorker")
	m := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mapWriter(m, g)
		}()
	}
	wg.Wait()
	os.Exit(4) // not reached
}

//go:noinline
func mapWriter(m map[int]int, g int) {
	for i := 0; ; i++ {
		m[i%1000] = g
	}
}

// runCrashChild runs crashChild with the environment env and returns its
// exit code and standard error.
func runCrashChild(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{envCrash + "=1", "GOTRACEBACK="}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("crashing child: %v, want an exit status; stderr:\n%s", err, stderr.String())
	}
	return ee.ExitCode(), stderr.String()
}

// checkCrash checks the one event a crashed child left: the fatal error,
// the map writer's frames, every goroutine, the crashed process's release.
func checkCrash(t *testing.T, events map[string]map[string]any, wantValues ...string) {
	t.Helper()
	if len(events) != 1 {
		t.Fatalf("%d events; want 1", len(events))
	}
	p := dumptest.Path
	for _, ev := range events {
		exc := p(ev, "exception", "values", -1)
		if value, _ := p(exc, "value").(string); p(exc, "type") != "fatal error" || !slices.Contains(wantValues, value) || ev["level"] != "fatal" {
			t.Errorf("exception %v: %v, level %v; want fatal error: one of %q, level fatal", p(exc, "type"), p(exc, "value"), ev["level"], wantValues)
		}
		if got := dumptest.LastInApp(p(exc, "stacktrace", "frames")); got != "mapWriter" {
			t.Errorf("newest in-app frame %q; want mapWriter", got)
		}
		if ev["release"] != "v1.4.1" || p(ev, "tags", "service") != "shop" || p(ev, "tags", "grade") != "2" {
			t.Errorf("release %v, tags %v; want the crashed process's release v1.4.1 and the service's tags", ev["release"], ev["tags"])
		}
		threads, _ := p(ev, "threads", "values").([]any)
		parked, writers := 0, 0
		for _, th := range threads {
			switch dumptest.LastInApp(p(th, "stacktrace", "frames")) {
			case "parkedWorker":
				parked++
			case "mapWriter":
				writers++
			}
		}
		if parked != 1 || writers < 1 {
			t.Errorf("%d threads, %d parked, %d map writers; want every goroutine", len(threads), parked, writers)
		}
	}
}

// A service that died of a fatal error is reported when it next starts:
// the runtime wrote its goroutines to the spool directory as it died.
func TestDumpOfFatalErrorAtNextStart(t *testing.T) {
	spool := t.TempDir()
	code, stderr := runCrashChild(t, "VIGIL_DUMPS_DSN=http://public@127.0.0.1:1/42", "VIGIL_DUMPS_SPOOL_DIR="+spool)
	if code != 2 || !strings.Contains(stderr, "fatal error: concurrent map writes") {
		t.Fatalf("exit %d, want 2 and the fatal error:\n%s", code, stderr)
	}
	rc := dumptest.NewReceiver(t)
	_, shutdown := startService(t, rc.DSN(), spool)
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	events, _ := rc.Snapshot()
	// The message is inferred from the stack (golang/go#76859), which
	// cannot always tell writes from a read and a write.
	checkCrash(t, events, "concurrent map writes", "concurrent map access")
	if left, _ := filepath.Glob(filepath.Join(spool, "crash-*")); len(left) != 0 {
		t.Errorf("crash files left: %v", left)
	}
}

// With DumpsWatch, a watching process reports the crash as it happens.
func TestDumpOfFatalErrorWatched(t *testing.T) {
	rc := dumptest.NewReceiver(t)
	code, stderr := runCrashChild(t, "VIGIL_DUMPS_DSN="+rc.DSN(), "VIGIL_DUMPS_SPOOL_DIR="+t.TempDir(), "VIGIL_DUMPS_WATCH=true")
	if code != 2 || !strings.Contains(stderr, "fatal error: concurrent map writes") {
		t.Fatalf("exit %d, want 2 and the fatal error on the watcher's stderr:\n%s", code, stderr)
	}
	events, _ := rc.Snapshot()
	checkCrash(t, events, "concurrent map writes")
	for _, ev := range events {
		if inferred := dumptest.Path(ev, "extra", "message_inferred"); inferred != nil {
			t.Errorf("extra.message_inferred = %v; want the watcher's exact message", inferred)
		}
	}
}

// Panics while the intake is down wait in the spool: those of a process
// that ended meanwhile go out from the next one, those of a running one
// once the intake is back. None is lost, none sent twice.
func TestDumpsSpooledWhileIntakeDown(t *testing.T) {
	rc := dumptest.NewReceiver(t)
	spool := t.TempDir()
	rc.Stop()

	panicOnce := func(path string) {
		t.Helper()
		srv := httptest.NewServer(sdk.HTTPMiddleware(shopMux()))
		defer srv.Close()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// A process that panics twice and ends while the intake is down.
	_, shutdown := startService(t, rc.DSN(), spool)
	panicOnce("/items/a")
	panicOnce("/items/b")
	if got := metricValue(t, "vigil_sdk_dumps_spooled"); got != 2 {
		t.Errorf("vigil_sdk_dumps_spooled = %v; want 2", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := shutdown(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "2 reports still spooled") {
		t.Errorf("shutdown with the intake down: %v; want it to say 2 reports are still spooled", err)
	}

	// The next process panics once while the intake is still down; the
	// intake comes back before it ends.
	_, shutdown = startService(t, rc.DSN(), spool)
	panicOnce("/items/c")
	rc.Start()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown with the intake back: %v", err)
	}
	events, posts := rc.Snapshot()
	var skus []string
	for _, ev := range events {
		skus = append(skus, strings.TrimPrefix(dumptest.Path(ev, "exception", "values", -1, "value").(string), "out of stock: "))
	}
	slices.Sort(skus)
	if strings.Join(skus, ",") != "a,b,c" || posts != 3 {
		t.Errorf("events for %v in %d requests; want a, b and c, each sent once", skus, posts)
	}
}

// metricValue is the value of an unlabelled gauge or counter in the SDK's
// registry.
func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := sdk.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			m := mf.Metric[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("no metric %s in sdk.Registry()", name)
	return 0
}
