package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/internal/auth"
)

// Authentication of every listener, in one place: which scope each port
// and path needs. See docs/security.md, "Authentication".

// addAuthFlag is --auth.config, on every role.
func addAuthFlag(fs *flag.FlagSet) *string {
	return fs.String("auth.config", "", "YAML file of tenants, their keys (SHA-256 hashes) with scopes write, read, admin, their Sentry DSN keys and limits, and the trusted proxies whose X-Scope-OrgID is believed; reloaded when it changes. Empty: no authentication, every request is tenant \"default\"")
}

// openAuth reads --auth.config, when set, and reloads it while the daemon
// runs.
func (d *daemon) openAuth(file string) error {
	if file == "" {
		return nil
	}
	o := auth.DefaultOptions(file)
	o.Logger, o.Registerer = d.logger.With("component", "auth"), d.reg
	a, err := auth.New(o)
	if err != nil {
		return err
	}
	d.auth = a
	d.add(a.Run)
	return nil
}

// Listener names, as given to d.listen and by the collector's Addr.
const (
	portQuery      = "query"
	portFederation = "federation"
	portProfiler   = "profiler"
	portDumps      = "dumps"
)

// guard wraps the handler of the port named port with authentication;
// with auth off it returns h.
func (d *daemon) guard(port string, h http.Handler) http.Handler {
	return d.auth.Handler(h, func(r *http.Request) auth.Scope { return requiredScope(port, r) })
}

// requiredScope is the scope a request to port needs:
//   - open: /metrics, /healthz, /readyz (scraped and probed without
//     credentials; they hold no tenant's data), the web UI's static files
//     at / and /ui/ (the APIs they call are guarded), and the Sentry
//     intake, which judges its DSN keys itself;
//   - admin: /debug/pprof/, the federation's /api/v1/admin/ and
//     /-/reload, and changes of a dump issue's status;
//   - write: the collector's ports, remote write and OTLP into the
//     federation, the profiler's /ingest and Push;
//   - read: everything else (the query APIs).
func requiredScope(port string, r *http.Request) auth.Scope {
	p := r.URL.Path
	switch {
	case p == "/metrics" || p == "/healthz" || p == "/readyz":
		return auth.Open
	case strings.HasPrefix(p, "/debug/pprof"):
		return auth.ScopeAdmin
	}
	switch port {
	case portDumps:
		if strings.HasSuffix(p, "/envelope/") || strings.HasSuffix(p, "/store/") {
			return auth.Open // DSN keys, judged by the intake
		}
		return auth.ScopeWrite
	case portQuery, portFederation, portProfiler, "ingester":
	default: // the collector's ports: collector, zipkin, jaeger-http
		return auth.ScopeWrite
	}
	switch {
	case port == portQuery && (p == "/" || strings.HasPrefix(p, "/ui/")):
		return auth.Open
	case p == "/api/v1/write" || strings.HasPrefix(p, "/api/v1/otlp/"):
		return auth.ScopeWrite
	case port == portProfiler && (p == "/ingest" || strings.HasPrefix(p, "/push.v1.PusherService/")):
		return auth.ScopeWrite
	case strings.HasPrefix(p, "/api/v1/admin/") || strings.HasPrefix(p, "/-/"):
		return auth.ScopeAdmin
	case r.Method != http.MethodGet && r.Method != http.MethodHead &&
		(strings.HasPrefix(p, "/vigil/api/v1/dumps/") || strings.HasPrefix(p, "/api/0/")):
		return auth.ScopeAdmin
	}
	return auth.ScopeRead
}

// authCollector applies authentication to the collector's options: its
// HTTP ports and OTLP/gRPC need write, the dumps intake takes the
// tenants' DSN keys, and Jaeger's UDP agent ports, which carry no
// credentials, listen only on loopback.
func (d *daemon) authCollector(o *collector.Options) error {
	if t := o.LocalTenant; t != "" && t != auth.DefaultTenant {
		switch {
		case !auth.ValidTenant(t):
			return fmt.Errorf("--collector.local-tenant %q: not a valid tenant id (a letter or digit, then at most 127 letters, digits, '_', '.' or '-')", t)
		case d.auth == nil:
			return fmt.Errorf("--collector.local-tenant %q: tenants need --auth.config; without it every record is the default tenant's", t)
		case d.auth.Config().Tenants[t] == nil:
			return fmt.Errorf("--collector.local-tenant %q: not a tenant of --auth.config", t)
		}
	}
	if d.auth == nil {
		return nil
	}
	if len(o.Dumps.Keys) > 0 {
		return errors.New("--dumps.keys and --auth.config: with authentication on, the dumps intake takes the tenants' sentry_keys of --auth.config; drop --dumps.keys")
	}
	o.Guard = d.guard
	o.GRPCServerOptions = append(o.GRPCServerOptions, d.auth.ServerOptions(auth.ScopeWrite)...)
	o.Dumps.Authenticator = d.auth
	o.Limits.Tenants = d.auth
	for _, u := range []struct {
		flag string
		addr *string
	}{{"--collector.jaeger.compact-listen", &o.Listen.JaegerCompact}, {"--collector.jaeger.binary-listen", &o.Listen.JaegerBinary}} {
		a, err := loopbackUDP(u.flag, *u.addr)
		if err != nil {
			return err
		}
		if a != *u.addr {
			d.logger.Info("Jaeger's UDP agent protocol carries no credentials: with --auth.config it listens on loopback only", "flag", u.flag, "addr", a)
		}
		*u.addr = a
	}
	return nil
}

// loopbackUDP returns addr bound to loopback: a port alone (":6831")
// becomes 127.0.0.1:6831; an explicit address not on loopback is refused.
func loopbackUDP(flagName, addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if host == "localhost" {
		return addr, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return addr, nil
	}
	return "", fmt.Errorf("%s %q: Jaeger's UDP agent protocol carries no credentials, so with --auth.config it may listen on loopback only (127.0.0.1%s, for an agent or SDK on this host); set %s= to turn it off, and send spans over OTLP with a key instead",
		flagName, addr, ":"+port, flagName)
}
