package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/tlsconfig"
	"github.com/vigilhq/vigil/ui"
)

// daemon collects what every Vigil process has: a metrics registry, a
// readiness flag, HTTP servers and a set of components run until the
// context ends.
type daemon struct {
	logger *slog.Logger
	reg    *prometheus.Registry
	// auth authenticates the requests of every listener; nil is auth off.
	auth   *auth.Authenticator
	ready  httpserver.Readiness
	tls    *tlsconfig.Server // nil: listeners serve plain HTTP
	runs   []func(context.Context) error
	closes []func() error
	// limiter admits the queries of every query port (limitQueries).
	limiter *querylimit.Limiter
	// tenantRegs hold the metrics of the stores of tenants other than the
	// default one, served on /metrics beside reg's.
	tenantRegs tenantRegistries
}

// parse parses a command's flags and returns its daemon.
func parse(fs *flag.FlagSet, args []string, common *commonFlags) (*daemon, error) {
	if err := config.Parse(fs, args); err != nil {
		return nil, err
	}
	logger, err := common.logger()
	if err != nil {
		return nil, err
	}
	d := newDaemon(logger)
	if d.tls, err = common.tls.server(logger, d.reg); err != nil {
		return nil, err
	}
	if err := d.openAuth(*common.authConfig); err != nil {
		return nil, err
	}
	return d, nil
}

func newDaemon(logger *slog.Logger) *daemon {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &daemon{logger: logger, reg: reg}
}

// mux returns a mux with the operational endpoints already registered.
func (d *daemon) mux() *http.ServeMux {
	m := http.NewServeMux()
	d.addOps(m)
	return m
}

// addOps registers /metrics, /healthz, /readyz and /debug/pprof/ on m.
func (d *daemon) addOps(m *http.ServeMux) {
	httpserver.AddOpsHandlers(m, prometheus.Gatherers{d.reg, &d.tenantRegs}, &d.ready)
}

// signalRegisterer labels the metrics of a component that exists once per
// signal (the disk queues and spools) with signal="…".
func (d *daemon) signalRegisterer(signal string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"signal": signal}, d.reg)
}

// onClose adds what close releases, in reverse order, once the daemon ran
// (or failed to start).
func (d *daemon) onClose(f func() error) { d.closes = append(d.closes, f) }

func (d *daemon) close() error {
	var err error
	for i := len(d.closes) - 1; i >= 0; i-- {
		err = errors.Join(err, d.closes[i]())
	}
	d.closes = nil
	return err
}

// clientID names a role's connections to Kafka.
func clientID(role string) string {
	host, _ := os.Hostname()
	return "vigil-" + role + "-" + host
}

// listen binds addr now and serves h, guarded by the scopes of the port
// name (see requiredScope), while the daemon runs.
func (d *daemon) listen(name, addr string, h http.Handler) (*httpserver.Server, error) {
	s, err := httpserver.ListenTLS(name, addr, d.guard(name, h), d.tls.HTTPConfig(), d.logger)
	if err != nil {
		return nil, err
	}
	d.add(s.Run)
	return s, nil
}

func (d *daemon) add(run func(context.Context) error) { d.runs = append(d.runs, run) }

// run starts every component and waits for all of them. The first error
// stops the others.
func (d *daemon) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range d.runs {
		g.Go(func() error { return r(ctx) })
	}
	d.ready.Set(true)
	err := g.Wait()
	d.ready.Set(false)
	return err
}

// queryMux returns the query port's mux: the operational endpoints and the
// web UI at its root, beside the APIs the signals register on it.
func (d *daemon) queryMux() (*http.ServeMux, error) {
	m := d.mux()
	u, err := ui.New()
	if err != nil {
		return nil, err
	}
	u.RegisterHTTP(m)
	// The UI shows who signed in; guarded as read like the query APIs.
	m.Handle(auth.WhoAmIPath, auth.WhoAmIHandler())
	return m, nil
}
