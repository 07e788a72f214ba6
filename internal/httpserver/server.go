// Package httpserver runs the HTTP listeners of Vigil's daemons with the
// endpoints every daemon serves: /metrics, /healthz, /readyz and
// /debug/pprof/.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxHeaderBytes bounds the request line and headers of one request on
// every listener (HTTP/1.1, and HTTP/2's header list): ample for a long
// LogQL or PromQL query in a GET URL, a basic-auth or bearer key and a
// browser's headers, far below Go's default of 1 MiB. A larger request is
// answered 431 (HTTP/1.1) before any handler runs.
const MaxHeaderBytes = 128 << 10

// Server is one HTTP listener.
type Server struct {
	name   string
	srv    *http.Server
	ln     net.Listener
	logger *slog.Logger
}

// Listen binds addr. Binding happens at construction so that a daemon fails
// at start-up, not later, when its port is taken, and so that tests can
// listen on ":0" and read Addr.
func Listen(name, addr string, h http.Handler, logger *slog.Logger) (*Server, error) {
	return ListenTLS(name, addr, h, nil, logger)
}

// ListenTLS is Listen serving HTTPS with tc (HTTP/2 and HTTP/1.1), or plain
// HTTP when tc is nil. tc comes from tlsconfig.Server.Config.
func ListenTLS(name, addr string, h http.Handler, tc *tls.Config, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for %s: %w", addr, name, err)
	}
	return &Server{
		name:   name,
		ln:     ln,
		logger: logger,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    MaxHeaderBytes,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			TLSConfig:         tc,
		},
	}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then stops accepting and waits up to 10 s for
// requests in flight.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	// Read before serving: Serve writes to srv.TLSConfig.
	useTLS := s.srv.TLSConfig != nil
	go func() {
		if useTLS {
			errc <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
	s.logger.Info("listening", "server", s.name, "addr", s.Addr(), "tls", useTLS)
	select {
	case err := <-errc:
		return fmt.Errorf("%s server: %w", s.name, err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutCtx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Readiness is flipped by a daemon once it can do its work.
type Readiness struct{ ready atomic.Bool }

// Set marks the daemon ready or not.
func (r *Readiness) Set(ready bool) { r.ready.Store(ready) }

// Ready reports the current state.
func (r *Readiness) Ready() bool { return r.ready.Load() }

// AddOpsHandlers registers /metrics for gatherer, /healthz, /readyz and
// /debug/pprof/ on mux.
func AddOpsHandlers(mux *http.ServeMux, gatherer prometheus.Gatherer, ready *Readiness) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil && !ready.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Close releases the listener of a server that will not run; after Run it
// returns net.ErrClosed.
func (s *Server) Close() error { return s.ln.Close() }
