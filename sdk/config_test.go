package sdk

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"VIGIL_SERVICE": "checkout", "VIGIL_GRADE": "2", "VIGIL_ENV": "prod", "VIGIL_VERSION": "1.4.0",
		"VIGIL_HOST": "h1", "VIGIL_COLLECTOR": "collector.internal", "VIGIL_OTLP_PROTOCOL": "grpc", "VIGIL_COLLECTOR_GRPC": "otlp.internal:14317",
		"VIGIL_DUMPS_DSN": "http://k3y@collector.internal:8410/42", "VIGIL_TRACES_DISABLED": "true",
		"VIGIL_TRACES_SAMPLE_RATE": "0.25", "VIGIL_LOG_LEVEL": "warn", "VIGIL_LOGS_SHIP": "1",
		"VIGIL_LOGS_QUEUE_BYTES": "1048576", "VIGIL_LOGS_FLUSH_INTERVAL": "250ms", "VIGIL_NO_GLOBALS": "true",
		"VIGIL_REPANIC": "true", "VIGIL_METRICS_BUCKETS": "0.1, 1,10",
		"VIGIL_DUMPS_SPOOL_DIR": "/var/spool/checkout", "VIGIL_DUMPS_SPOOL_MAX_BYTES": "2097152",
		"VIGIL_DUMPS_IN_APP": "github.com/acme/checkout, github.com/acme/lib", "VIGIL_DUMPS_WATCH": "true",
	}
	c, err := Config{}.fromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.defaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Service != "checkout" || c.Grade != 2 || c.Env != "prod" || c.Version != "1.4.0" || c.Host != "h1" ||
		c.Collector != "collector.internal" || c.Protocol != "grpc" || c.CollectorGRPC != "otlp.internal:14317" || c.DumpsDSN != env["VIGIL_DUMPS_DSN"] ||
		!c.TracesDisabled || *c.SampleRate != 0.25 || c.LogLevel.String() != "WARN" || !c.ShipLogs ||
		c.LogsQueueBytes != 1<<20 || c.LogsFlushInterval != 250*time.Millisecond || !c.NoGlobals || !c.Repanic ||
		len(c.Buckets) != 3 || c.Buckets[2] != 10 || c.DumpsSpoolDir != "/var/spool/checkout" || c.DumpsSpoolMaxBytes != 2<<20 ||
		len(c.DumpsInApp) != 2 || c.DumpsInApp[1] != "github.com/acme/lib" || !c.DumpsWatch {
		t.Errorf("got %+v", c)
	}

	// A field set in code wins over the environment.
	c, err = Config{Service: "code", Grade: 3}.fromEnv(func(k string) string { return env[k] })
	if err != nil || c.Service != "code" || c.Grade != 3 {
		t.Errorf("got service %q grade %d, %v; want the values set in code", c.Service, c.Grade, err)
	}

	// OTLP/gRPC defaults to the collector's host on port 4317.
	c, err = Config{Service: "s", Grade: 1, Collector: "https://c.example.com:9000"}.defaults()
	if err != nil || c.CollectorGRPC != "c.example.com:4317" {
		t.Errorf("CollectorGRPC: got %q, %v; want c.example.com:4317", c.CollectorGRPC, err)
	}
}

func TestConfigErrorsNameTheOption(t *testing.T) {
	f := func(env map[string]string, cfg Config, want ...string) {
		t.Helper()
		c, err := cfg.fromEnv(func(k string) string { return env[k] })
		if err == nil {
			_, err = c.defaults()
		}
		if err == nil {
			t.Fatalf("%v %+v: no error; want %q", env, cfg, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v %+v: error %q; want it to contain %q", env, cfg, err, w)
			}
		}
	}
	ok := Config{Service: "s", Grade: 1}
	f(nil, Config{}, "Config.Service (VIGIL_SERVICE): required", "Config.Grade (VIGIL_GRADE): want an integer from 1 (critical) to 4 (low), got 0")
	f(map[string]string{"VIGIL_GRADE": "high"}, Config{Service: "s"}, `VIGIL_GRADE: cannot parse "high" as an integer`)
	f(nil, Config{Service: "s", Grade: 5}, "Config.Grade (VIGIL_GRADE)", "got 5")
	f(map[string]string{"VIGIL_TRACES_SAMPLE_RATE": "2"}, ok, "Config.SampleRate (VIGIL_TRACES_SAMPLE_RATE): want a number from 0 to 1, got 2")
	f(map[string]string{"VIGIL_TRACES_SAMPLE_RATE": "all"}, ok, `VIGIL_TRACES_SAMPLE_RATE: cannot parse "all"`)
	f(map[string]string{"VIGIL_LOG_LEVEL": "loud"}, ok, `VIGIL_LOG_LEVEL: cannot parse "loud"`)
	f(map[string]string{"VIGIL_LOGS_SHIP": "maybe"}, ok, `VIGIL_LOGS_SHIP: cannot parse "maybe" as a boolean`)
	f(map[string]string{"VIGIL_LOGS_FLUSH_INTERVAL": "soon"}, ok, `VIGIL_LOGS_FLUSH_INTERVAL: cannot parse "soon"`)
	f(map[string]string{"VIGIL_LOGS_QUEUE_BYTES": "10"}, ok, "Config.LogsQueueBytes (VIGIL_LOGS_QUEUE_BYTES): want at least 65536, got 10")
	f(map[string]string{"VIGIL_OTLP_PROTOCOL": "udp"}, ok, `Config.Protocol (VIGIL_OTLP_PROTOCOL): want "http" or "grpc", got "udp"`)
	f(map[string]string{"VIGIL_COLLECTOR_GRPC": "nohost"}, ok, `Config.CollectorGRPC (VIGIL_COLLECTOR_GRPC): want host:port, got "nohost"`)
	f(map[string]string{"VIGIL_COLLECTOR": "ftp://x"}, ok, `Config.Collector (VIGIL_COLLECTOR): scheme "ftp"`)
	f(map[string]string{"VIGIL_DUMPS_DSN": "http://host:8410/1"}, ok, "Config.DumpsDSN (VIGIL_DUMPS_DSN): no key")
	f(map[string]string{"VIGIL_DUMPS_DSN": "http://key@host:8410/"}, ok, "Config.DumpsDSN (VIGIL_DUMPS_DSN): no project id")
	f(map[string]string{"VIGIL_DUMPS_WATCH": "true"}, ok, "Config.DumpsWatch (VIGIL_DUMPS_WATCH): needs DumpsDSN")
	f(map[string]string{"VIGIL_DUMPS_SPOOL_MAX_BYTES": "1000"}, ok, "Config.DumpsSpoolMaxBytes (VIGIL_DUMPS_SPOOL_MAX_BYTES): want at least 1048576, got 1000")
	f(map[string]string{"VIGIL_DUMPS_SPOOL_MAX_BYTES": "lots"}, ok, `VIGIL_DUMPS_SPOOL_MAX_BYTES: cannot parse "lots" as an integer`)
	f(map[string]string{"VIGIL_METRICS_BUCKETS": "1,0.5"}, ok, "Config.Buckets (VIGIL_METRICS_BUCKETS): want increasing")
}

func TestCollectorURL(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		u, err := collectorURL(in)
		if err != nil || u.String() != want {
			t.Errorf("collectorURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	f("", "http://localhost:4318")
	f("collector", "http://collector:4318")
	f("collector:9000", "http://collector:9000")
	f("https://collector.example.com/vigil/", "https://collector.example.com:4318/vigil")
	f("http://[::1]:4318", "http://[::1]:4318")
}

func TestInitTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	const dsn = "http://key@127.0.0.1:1/1"
	spool := t.TempDir()
	shutdown, err := Init(Config{Service: "a", Grade: 1, TracesDisabled: true, Registry: reg, NoGlobals: true, LogOutput: io.Discard,
		DumpsDSN: dsn, DumpsSpoolDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(Config{Service: "b", Grade: 1, TracesDisabled: true, NoGlobals: true, DumpsDSN: dsn, DumpsSpoolDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "Init called twice") {
		t.Errorf("second Init: %v; want an error", err)
	}
	// The first Init still captures this process's crash output.
	if files, _ := filepath.Glob(filepath.Join(spool, "crash-*")); len(files) != 1 {
		t.Errorf("crash output files of the first Init: %v; want 1", files)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(Config{Service: "a", Grade: 1, TracesDisabled: true, Registry: reg, NoGlobals: true}); err == nil || !strings.Contains(err.Error(), "Config.Registry") {
		t.Errorf("Init on a registry that has the metrics already: %v; want an error naming Config.Registry", err)
	}
	if current.Load() != nil {
		t.Error("a failed Init left the SDK initialized")
	}
}

// Init takes what the code leaves unset from the environment.
func TestInitFromEnvironment(t *testing.T) {
	t.Setenv("VIGIL_SERVICE", "from-env")
	t.Setenv("VIGIL_GRADE", "4")
	t.Setenv("VIGIL_ENV", "staging")
	t.Setenv("VIGIL_TRACES_DISABLED", "true")
	var logs syncBuffer
	shutdown, err := Init(Config{LogOutput: &logs, NoGlobals: true})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if current.Load().tracer != nil {
		t.Error("VIGIL_TRACES_DISABLED=true left tracing on")
	}
	Logger().Info("hello")
	if l := logs.lines(t); len(l) != 1 || l[0]["service"] != "from-env" || l[0]["grade"] != 4.0 || l[0]["env"] != "staging" {
		t.Errorf("got %v; want service, grade and env from the environment", l)
	}
	mfs, err := Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_sdk_panics_total" || len(mf.Metric) == 0 || !strings.HasPrefix(mf.GetName(), "vigil_") {
			continue
		}
		for _, l := range mf.Metric[0].Label {
			if l.GetName() == "service" && l.GetValue() != "from-env" || l.GetName() == "grade" && l.GetValue() != "4" {
				t.Errorf("%s: label %s=%q; want from-env and 4", mf.GetName(), l.GetName(), l.GetValue())
			}
		}
	}
}
