package sdk

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Default ports of the Vigil collector, used when Config.Collector names
// no port (docs/operations.md).
const (
	DefaultCollectorHTTPPort = "4318" // OTLP/HTTP /v1/traces, logs API /api/v1/logs
	DefaultCollectorGRPCPort = "4317" // OTLP/gRPC
	defaultCollectorHost     = "localhost"
)

// Config configures Init. A zero field is filled from its VIGIL_…
// environment variable, then from its default; a field set in code wins
// over the environment.
type Config struct {
	// Service is the service name on every metric, span and log line.
	// VIGIL_SERVICE; required.
	Service string
	// Grade is the service grade, 1 (critical) to 4 (low). VIGIL_GRADE;
	// required.
	Grade int
	// Env is the deployment environment, e.g. prod. VIGIL_ENV.
	Env string
	// Version is the service's release. VIGIL_VERSION.
	Version string
	// Host is the host name on spans and logs. VIGIL_HOST; default the
	// machine's host name.
	Host string

	// Collector is the Vigil collector: a host, host:port or URL of its
	// HTTP port (OTLP/HTTP traces at /v1/traces, logs at /api/v1/logs).
	// VIGIL_COLLECTOR; default http://localhost:4318.
	Collector string
	// Protocol of the trace exporter: "http" (OTLP/HTTP protobuf to
	// Collector) or "grpc" (OTLP/gRPC to CollectorGRPC).
	// VIGIL_OTLP_PROTOCOL; default http.
	Protocol string
	// CollectorGRPC is the host:port of the collector's OTLP/gRPC port,
	// used with Protocol "grpc"; plain text when Collector is http://, TLS
	// when https://. VIGIL_COLLECTOR_GRPC; default Collector's host, port
	// 4317.
	CollectorGRPC string
	// DumpsDSN is the DSN of Vigil's Sentry-compatible dumps intake,
	// http://KEY@host:8410/PROJECT; empty reports panics only to the log.
	// VIGIL_DUMPS_DSN.
	DumpsDSN string
	// DumpsSpoolDir keeps panic reports until the intake accepted them, and
	// the crash output of fatal runtime errors, reported on the next start.
	// Instances of one service on one host may share it.
	// VIGIL_DUMPS_SPOOL_DIR; default <user cache dir>/vigil-dumps/<Service>
	// (os.UserCacheDir, e.g. ~/.cache).
	DumpsSpoolDir string
	// DumpsSpoolMaxBytes bounds the spool; the oldest reports are dropped
	// beyond it, and counted. VIGIL_DUMPS_SPOOL_MAX_BYTES; default 64 MiB.
	DumpsSpoolMaxBytes int
	// DumpsInApp are the package path prefixes of the service's own code,
	// whose frames a dump marks in_app. VIGIL_DUMPS_IN_APP
	// (comma-separated); default the main module's path.
	DumpsInApp []string
	// DumpsWatch makes Init run the service as the child of a watching
	// process, which reports a fatal runtime error with the runtime's exact
	// message, and a death by SIGKILL (Unix only; see dump.Watch). Init must
	// then come first in main. Needs DumpsDSN. VIGIL_DUMPS_WATCH.
	DumpsWatch bool

	// TracesDisabled turns tracing off: no spans, no propagation.
	// VIGIL_TRACES_DISABLED.
	TracesDisabled bool
	// SampleRate is the fraction of new traces sampled, 0 to 1; a request
	// that arrives with a trace follows its caller's decision.
	// VIGIL_TRACES_SAMPLE_RATE; default 1.
	SampleRate *float64

	// LogLevel is the lowest level logged. VIGIL_LOG_LEVEL (debug, info,
	// warn, error); default info.
	LogLevel *slog.Level
	// LogOutput receives the JSON log lines; default os.Stdout (no
	// environment variable).
	LogOutput io.Writer
	// ShipLogs also sends every log line to the collector's logs API,
	// asynchronously. VIGIL_LOGS_SHIP.
	ShipLogs bool
	// LogsQueueBytes bounds the log lines waiting to be shipped; lines
	// beyond it are dropped and counted. VIGIL_LOGS_QUEUE_BYTES; default
	// 8 MiB.
	LogsQueueBytes int
	// LogsFlushInterval is the longest a shipped line waits for its batch.
	// VIGIL_LOGS_FLUSH_INTERVAL; default 1s.
	LogsFlushInterval time.Duration
	// NoGlobals leaves the OpenTelemetry global tracer provider and
	// propagator and slog's default logger alone. VIGIL_NO_GLOBALS.
	NoGlobals bool

	// Repanic makes the middleware, the interceptors and Go re-panic after
	// reporting a panic instead of answering 500 (or codes.Internal) and
	// carrying on. VIGIL_REPANIC.
	Repanic bool

	// Buckets are the classic buckets of the duration histograms, in
	// seconds; the native histogram is kept beside them.
	// VIGIL_METRICS_BUCKETS (comma-separated); default
	// .005,.01,.025,.05,.1,.25,.5,1,2.5,5,10.
	Buckets []float64
	// Registry receives the SDK's metrics; default a new registry with the
	// Go and process collectors (no environment variable). MetricsHandler
	// serves it.
	Registry *prometheus.Registry
}

// Float64 and Level return pointers for the optional Config fields.
func Float64(v float64) *float64     { return &v }
func Level(l slog.Level) *slog.Level { return &l }

// fromEnv fills the zero fields of c from the environment; getenv is
// os.Getenv in Init.
func (c Config) fromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(dst *string, key string) {
		if *dst == "" {
			*dst = strings.TrimSpace(getenv(key))
		}
	}
	boolean := func(dst *bool, key string) {
		v := strings.TrimSpace(getenv(key))
		if *dst || v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot parse %q as a boolean (true or false)", key, v))
			return
		}
		*dst = b
	}
	integer := func(dst *int, key string) {
		v := strings.TrimSpace(getenv(key))
		if *dst != 0 || v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot parse %q as an integer", key, v))
			return
		}
		*dst = n
	}
	str(&c.Service, "VIGIL_SERVICE")
	integer(&c.Grade, "VIGIL_GRADE")
	str(&c.Env, "VIGIL_ENV")
	str(&c.Version, "VIGIL_VERSION")
	str(&c.Host, "VIGIL_HOST")
	str(&c.Collector, "VIGIL_COLLECTOR")
	str(&c.Protocol, "VIGIL_OTLP_PROTOCOL")
	str(&c.CollectorGRPC, "VIGIL_COLLECTOR_GRPC")
	str(&c.DumpsDSN, "VIGIL_DUMPS_DSN")
	str(&c.DumpsSpoolDir, "VIGIL_DUMPS_SPOOL_DIR")
	integer(&c.DumpsSpoolMaxBytes, "VIGIL_DUMPS_SPOOL_MAX_BYTES")
	if v := strings.TrimSpace(getenv("VIGIL_DUMPS_IN_APP")); c.DumpsInApp == nil && v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.DumpsInApp = append(c.DumpsInApp, p)
			}
		}
	}
	boolean(&c.DumpsWatch, "VIGIL_DUMPS_WATCH")
	boolean(&c.TracesDisabled, "VIGIL_TRACES_DISABLED")
	if v := strings.TrimSpace(getenv("VIGIL_TRACES_SAMPLE_RATE")); c.SampleRate == nil && v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VIGIL_TRACES_SAMPLE_RATE: cannot parse %q as a number from 0 to 1", v))
		} else {
			c.SampleRate = &f
		}
	}
	if v := strings.TrimSpace(getenv("VIGIL_LOG_LEVEL")); c.LogLevel == nil && v != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("VIGIL_LOG_LEVEL: cannot parse %q; want debug, info, warn or error", v))
		} else {
			c.LogLevel = &l
		}
	}
	boolean(&c.ShipLogs, "VIGIL_LOGS_SHIP")
	integer(&c.LogsQueueBytes, "VIGIL_LOGS_QUEUE_BYTES")
	if v := strings.TrimSpace(getenv("VIGIL_LOGS_FLUSH_INTERVAL")); c.LogsFlushInterval == 0 && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("VIGIL_LOGS_FLUSH_INTERVAL: cannot parse %q as a duration, e.g. 500ms", v))
		} else {
			c.LogsFlushInterval = d
		}
	}
	boolean(&c.NoGlobals, "VIGIL_NO_GLOBALS")
	boolean(&c.Repanic, "VIGIL_REPANIC")
	if v := strings.TrimSpace(getenv("VIGIL_METRICS_BUCKETS")); c.Buckets == nil && v != "" {
		for _, s := range strings.Split(v, ",") {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("VIGIL_METRICS_BUCKETS: cannot parse %q as a number of seconds", s))
				break
			}
			c.Buckets = append(c.Buckets, f)
		}
	}
	return c, errors.Join(errs...)
}

// defaults fills what is still zero and checks every option; an error names
// the option and its environment variable.
func (c Config) defaults() (Config, error) {
	var errs []error
	bad := func(field, env, format string, args ...any) {
		//lint:ignore ST1005 the message starts with the option's Go name, Config.<Field>, as the user wrote it
		errs = append(errs, fmt.Errorf("Config.%s (%s): %s", field, env, fmt.Sprintf(format, args...)))
	}
	if c.Service == "" {
		bad("Service", "VIGIL_SERVICE", "required: the name of the service")
	}
	if c.Grade < 1 || c.Grade > 4 {
		bad("Grade", "VIGIL_GRADE", "want an integer from 1 (critical) to 4 (low), got %d", c.Grade)
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	switch c.Protocol {
	case "":
		c.Protocol = "http"
	case "http", "grpc":
	default:
		bad("Protocol", "VIGIL_OTLP_PROTOCOL", `want "http" or "grpc", got %q`, c.Protocol)
	}
	if u, err := collectorURL(c.Collector); err != nil {
		bad("Collector", "VIGIL_COLLECTOR", "%v", err)
	} else if c.CollectorGRPC == "" {
		c.CollectorGRPC = net.JoinHostPort(u.Hostname(), DefaultCollectorGRPCPort)
	} else if _, _, err := net.SplitHostPort(c.CollectorGRPC); err != nil {
		bad("CollectorGRPC", "VIGIL_COLLECTOR_GRPC", "want host:port, got %q", c.CollectorGRPC)
	}
	if c.DumpsDSN != "" {
		if err := checkDSN(c.DumpsDSN); err != nil {
			bad("DumpsDSN", "VIGIL_DUMPS_DSN", "%v", err)
		}
	} else if c.DumpsWatch {
		bad("DumpsWatch", "VIGIL_DUMPS_WATCH", "needs DumpsDSN (VIGIL_DUMPS_DSN): the watcher reports crashes there")
	}
	if c.DumpsSpoolMaxBytes < 0 || c.DumpsSpoolMaxBytes > 0 && c.DumpsSpoolMaxBytes < 1<<20 {
		bad("DumpsSpoolMaxBytes", "VIGIL_DUMPS_SPOOL_MAX_BYTES", "want at least 1048576, got %d", c.DumpsSpoolMaxBytes)
	}
	if c.SampleRate == nil {
		c.SampleRate = Float64(1)
	} else if r := *c.SampleRate; !(r >= 0 && r <= 1) {
		bad("SampleRate", "VIGIL_TRACES_SAMPLE_RATE", "want a number from 0 to 1, got %v", r)
	}
	if c.LogLevel == nil {
		c.LogLevel = Level(slog.LevelInfo)
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stdout
	}
	if c.LogsQueueBytes == 0 {
		c.LogsQueueBytes = 8 << 20
	} else if c.LogsQueueBytes < 64<<10 {
		bad("LogsQueueBytes", "VIGIL_LOGS_QUEUE_BYTES", "want at least 65536, got %d", c.LogsQueueBytes)
	}
	if c.LogsFlushInterval == 0 {
		c.LogsFlushInterval = time.Second
	} else if c.LogsFlushInterval < 0 {
		bad("LogsFlushInterval", "VIGIL_LOGS_FLUSH_INTERVAL", "want a positive duration, got %v", c.LogsFlushInterval)
	}
	if c.Buckets == nil {
		c.Buckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	}
	for i, b := range c.Buckets {
		if !(b > 0) || (i > 0 && b <= c.Buckets[i-1]) {
			bad("Buckets", "VIGIL_METRICS_BUCKETS", "want increasing positive numbers of seconds, got %v", c.Buckets)
			break
		}
	}
	return c, errors.Join(errs...)
}

// collectorURL turns Config.Collector into the base URL of the collector's
// HTTP port: a bare host gets http:// and port 4318.
func collectorURL(s string) (*url.URL, error) {
	if s == "" {
		s = defaultCollectorHost
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %q as a host, host:port or URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q names no host", s)
	}
	if u.Port() == "" {
		u.Host += ":" + DefaultCollectorHTTPPort
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// checkDSN checks the shape of a Sentry DSN: scheme://KEY@host/PROJECT.
func checkDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("cannot parse %q as a URL", dsn)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return errors.New("no key: want http://KEY@host:8410/PROJECT")
	}
	project := u.Path[strings.LastIndex(u.Path, "/")+1:]
	if project == "" {
		return errors.New("no project id: want http://KEY@host:8410/PROJECT")
	}
	return nil
}
