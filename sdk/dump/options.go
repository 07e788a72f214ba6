package dump

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/sdk/resilience"
)

// Version is the version this package reports as its SDK
// ("sentry_client=vigil-go/<Version>").
const Version = "0.1.0"

const sdkName = "vigil-go"

// Options configure a Reporter. The zero value of every field but DSN
// and Service means its default.
type Options struct {
	// DSN is where reports go, in Sentry's form:
	// http://<key>@<host>:8410/<project_id>.
	DSN string
	// SpoolDir keeps reports until the intake accepted them, and the
	// crash output of fatal runtime errors. Default:
	// <user cache dir>/vigil-dumps/<Service>. Instances of one service on
	// one host may share it.
	SpoolDir string
	// MaxSpoolBytes bounds the spool; the oldest reports are dropped
	// beyond it (vigil_sdk_dumps_dropped_total{reason="spool_full"}).
	// Default 64 MiB.
	MaxSpoolBytes int64
	// MaxEventBytes bounds one event's JSON: goroutines beyond it are left
	// out (the crashed one never is). Default 1,000,000 bytes, Sentry's
	// limit for one event.
	MaxEventBytes int
	// MaxGoroutines bounds the goroutines reported per event. Default 1000.
	MaxGoroutines int

	// Service, Grade (1–4, 0 unknown), Env, Version and Release describe
	// the service; they become tags and the event's release and
	// environment. Release defaults to Version.
	Service string
	Grade   int
	Env     string
	Version string
	Release string
	// ServerName is the host; default os.Hostname().
	ServerName string
	// InAppPrefixes are the package path prefixes of the application's
	// own code. Default: the main module's path from the build info (and
	// "main").
	InAppPrefixes []string
	// TraceContext returns the trace and span id (hex) of a context, to
	// put the dump on its trace. Optional.
	TraceContext func(context.Context) (traceID, spanID string)
	// RedactHeaders are request headers whose values are replaced by
	// "[Filtered]", in addition to DefaultRedactHeaders.
	RedactHeaders []string

	// DisableCrashOutput leaves runtime/debug.SetCrashOutput alone: fatal
	// runtime errors of this process are then not reported.
	DisableCrashOutput bool
	// Traceback is passed to runtime/debug.SetTraceback so that the crash
	// output holds every goroutine. Default "all"; "-" leaves it alone.
	Traceback string

	// HTTPClient sends the envelopes. Default: a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the wait between failed deliveries.
	// Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// Breaker is the circuit breaker in front of the intake and
	// RetryWindow the adaptive retry window that grants retries
	// (sdk/resilience); zero fields take resilience's defaults. Their
	// Name is "sdk_dumps", their Registerer this Registerer.
	Breaker     resilience.BreakerConfig
	RetryWindow resilience.RetryWindowConfig
	// Logger logs delivery problems. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the package's metrics (vigil_sdk_dumps_…).
	// Optional: Reporter.Collectors returns them too.
	Registerer prometheus.Registerer
}

// DefaultRedactHeaders are the request headers whose values a report
// never carries.
var DefaultRedactHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Api-Key", "X-Auth-Token", "X-Csrf-Token", "X-Xsrf-Token",
	"X-Sentry-Auth", "X-Amz-Security-Token",
}

func (o *Options) setDefaults() error {
	if o.DSN == "" {
		return fmt.Errorf("dump: Options.DSN is empty: set it to the intake's DSN, e.g. http://<key>@localhost:8410/1")
	}
	if o.Service == "" {
		return fmt.Errorf("dump: Options.Service is empty")
	}
	if o.Grade < 0 || o.Grade > 4 {
		return fmt.Errorf("dump: Options.Grade %d: want 1 to 4, or 0 for unknown", o.Grade)
	}
	if o.SpoolDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		o.SpoolDir = filepath.Join(base, "vigil-dumps", safeName(o.Service))
	}
	if o.MaxSpoolBytes <= 0 {
		o.MaxSpoolBytes = 64 << 20
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = 1_000_000
	}
	if o.MaxGoroutines <= 0 {
		o.MaxGoroutines = 1000
	}
	if o.Release == "" {
		o.Release = o.Version
	}
	if o.ServerName == "" {
		o.ServerName, _ = os.Hostname()
	}
	if len(o.InAppPrefixes) == 0 {
		o.InAppPrefixes = []string{"main"}
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" {
			o.InAppPrefixes = append(o.InAppPrefixes, bi.Main.Path)
		}
	}
	if o.Traceback == "" {
		o.Traceback = "all"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// dsn is a parsed Sentry DSN.
type dsn struct {
	raw       string
	publicKey string
	secretKey string
	envelope  string // the envelope endpoint's URL
}

// parseDSN parses {scheme}://{key}[:{secret}]@{host}[:{port}]/[{path}/]{project_id}.
func parseDSN(s string) (dsn, error) {
	u, err := url.Parse(s)
	if err != nil {
		return dsn{}, fmt.Errorf("dump: DSN %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return dsn{}, fmt.Errorf("dump: DSN %q: scheme %q: want http or https", s, u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return dsn{}, fmt.Errorf("dump: DSN %q: no public key: want %s://<key>@%s/<project_id>", s, u.Scheme, u.Host)
	}
	if u.Host == "" {
		return dsn{}, fmt.Errorf("dump: DSN %q: no host", s)
	}
	path := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	project := path[i+1:]
	if i < 0 || project == "" {
		return dsn{}, fmt.Errorf("dump: DSN %q: no project id: want %s://<key>@%s/<project_id>", s, u.Scheme, u.Host)
	}
	secret, _ := u.User.Password()
	endpoint := url.URL{Scheme: u.Scheme, Host: u.Host, Path: path[:i] + "/api/" + project + "/envelope/"}
	return dsn{raw: s, publicKey: u.User.Username(), secretKey: secret, envelope: endpoint.String()}, nil
}

// authHeader is the X-Sentry-Auth header's value.
func (d dsn) authHeader() string {
	a := "Sentry sentry_version=7, sentry_client=" + sdkName + "/" + Version + ", sentry_key=" + d.publicKey
	if d.secretKey != "" {
		a += ", sentry_secret=" + d.secretKey
	}
	return a
}
