package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vigilhq/vigil/internal/httpserver"
)

// daemon collects what every Vigil process has: a metrics registry, a
// readiness flag, HTTP servers and a set of components run until the
// context ends.
type daemon struct {
	logger *slog.Logger
	reg    *prometheus.Registry
	ready  httpserver.Readiness
	runs   []func(context.Context) error
}

func newDaemon(logger *slog.Logger) *daemon {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &daemon{logger: logger, reg: reg}
}

// mux returns a mux with the operational endpoints already registered.
func (d *daemon) mux() *http.ServeMux {
	m := http.NewServeMux()
	httpserver.AddOpsHandlers(m, d.reg, &d.ready)
	return m
}

// listen binds addr now and serves mux while the daemon runs.
func (d *daemon) listen(name, addr string, mux *http.ServeMux) (*httpserver.Server, error) {
	s, err := httpserver.Listen(name, addr, mux, d.logger)
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
