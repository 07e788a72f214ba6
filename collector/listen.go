package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilhq/vigil/internal/httpserver"
)

// Addrs are the listen addresses of the collector's receivers; an empty
// address disables its receivers. The defaults are in internal/config.
type Addrs struct {
	// HTTP serves POST /api/v1/logs, OTLP/HTTP /v1/logs and /v1/traces.
	HTTP string
	// GRPC serves OTLP/gRPC logs and traces.
	GRPC string
	// Zipkin serves Zipkin v2 POST /api/v2/spans.
	Zipkin string
	// JaegerHTTP serves Jaeger thrift over HTTP, POST /api/traces.
	JaegerHTTP string
	// JaegerCompact and JaegerBinary are UDP addresses of the Jaeger agent
	// protocol, thrift compact and binary.
	JaegerCompact, JaegerBinary string
	// Dumps serves the Sentry-compatible intake, POST
	// /api/{project}/envelope/ and /api/{project}/store/.
	Dumps string
}

// Listen binds every address of opts.Listen, so that a daemon fails at
// start-up when a port is taken; Run then serves them. The span receivers
// listen only when the collector has a span queue, the dumps intake only
// when it has a dumps queue. Every HTTP port also
// gets the handlers of opts.Ops (/metrics, /healthz, …).
func (c *Collector) Listen() (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	a := c.opts.Listen
	c.addrs = make(map[string]string)
	mux := c.newMux()
	c.RegisterHTTP(mux)
	if c.traces != nil {
		c.traces.RegisterOTLP(mux)
	}
	if err := c.listenHTTP("collector", a.HTTP, mux); err != nil {
		return err
	}
	if a.GRPC != "" {
		ln, err := net.Listen("tcp", a.GRPC)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for OTLP/gRPC: %w", a.GRPC, err)
		}
		var sopts []grpc.ServerOption
		if c.opts.TLS != nil {
			sopts = append(sopts, grpc.Creds(credentials.NewTLS(c.opts.TLS.GRPCConfig())))
		}
		srv := NewGRPCServer(c, c.traces, int(c.opts.MaxBodyBytes), sopts...)
		c.closers = append(c.closers, ln.Close)
		c.addrs["otlp-grpc"] = ln.Addr().String()
		c.serve = append(c.serve, func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("OTLP/gRPC server: %w", err)
			case <-ctx.Done():
				srv.GracefulStop()
				return nil
			}
		})
	}
	if c.dumps != nil && a.Dumps != "" {
		if len(c.dumps.keys) == 0 && c.dumps.opts.Authenticator == nil {
			c.logger.Warn("the dumps intake accepts no DSN key and refuses every event; set --dumps.keys", "addr", a.Dumps)
		}
		mux := c.newMux()
		c.dumps.register(mux)
		if err := c.listenHTTP("dumps", a.Dumps, mux); err != nil {
			return err
		}
	}
	if c.traces == nil {
		return nil
	}
	for _, h := range []struct {
		name, addr string
		register   func(*http.ServeMux)
	}{{"zipkin", a.Zipkin, c.traces.RegisterZipkin}, {"jaeger-http", a.JaegerHTTP, c.traces.RegisterJaeger}} {
		mux := c.newMux()
		h.register(mux)
		if err := c.listenHTTP(h.name, h.addr, mux); err != nil {
			return err
		}
	}
	for _, u := range []struct {
		name, addr string
		compact    bool
	}{{"jaeger-compact", a.JaegerCompact, true}, {"jaeger-binary", a.JaegerBinary, false}} {
		if u.addr == "" {
			continue
		}
		conn, err := net.ListenPacket("udp", u.addr)
		if err != nil {
			return fmt.Errorf("cannot listen on UDP %s for Jaeger: %w", u.addr, err)
		}
		c.closers = append(c.closers, conn.Close)
		c.addrs[u.name] = conn.LocalAddr().String()
		c.serve = append(c.serve, func(ctx context.Context) error { return c.traces.ServeJaegerUDP(ctx, conn, u.compact) })
	}
	return nil
}

// newMux returns a mux with the operational handlers of opts.Ops.
func (c *Collector) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	if c.opts.Ops != nil {
		c.opts.Ops(mux)
	}
	return mux
}

func (c *Collector) listenHTTP(name, addr string, mux *http.ServeMux) error {
	if addr == "" {
		return nil
	}
	var h http.Handler = mux
	if c.opts.Guard != nil {
		h = c.opts.Guard(name, mux)
	}
	s, err := httpserver.ListenTLS(name, addr, h, c.opts.TLS.HTTPConfig(), c.logger)
	if err != nil {
		return err
	}
	c.closers = append(c.closers, s.Close)
	c.serve = append(c.serve, s.Run)
	c.addrs[name] = s.Addr()
	return nil
}

// Addr returns the address a listener is bound to once Listen returned,
// or "" when it is disabled; name is one of collector (the HTTP port),
// otlp-grpc, zipkin, jaeger-http, jaeger-compact, jaeger-binary, dumps. Tests
// listen on ":0" and read it.
func (c *Collector) Addr(name string) string { return c.addrs[name] }

// Run tails files and serves the listeners bound by Listen until ctx ends,
// then stops accepting and drains the requests in flight: every request
// answered 2xx before Run returns was durably queued.
func (c *Collector) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range c.serve {
		g.Go(func() error { return s(ctx) })
	}
	if c.tailer != nil {
		g.Go(func() error { return c.tailer.Run(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	return g.Wait()
}

// Close releases what Listen bound; a daemon whose start-up failed after
// Listen calls it. After Run it does nothing.
func (c *Collector) Close() error {
	var err error
	for _, f := range c.closers {
		if e := f(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = errors.Join(err, e)
		}
	}
	c.closers, c.serve = nil, nil
	return err
}
