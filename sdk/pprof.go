package sdk

import (
	"net/http"
	"net/http/pprof"
	"strconv"
)

// Headers on every pprof response: the labels Vigil's profiler files the
// profile under.
const (
	HeaderService = "Vigil-Service"
	HeaderGrade   = "Vigil-Grade"
	HeaderEnv     = "Vigil-Env"
	HeaderVersion = "Vigil-Version"
	HeaderHost    = "Vigil-Host"
)

// RegisterPprof adds the pprof endpoints Vigil's profiler scrapes to mux,
// normally an admin mux not exposed to users: /debug/pprof/ (index and
// named profiles: heap, goroutine, allocs, block, mutex, threadcreate),
// /debug/pprof/profile (CPU, ?seconds=N), /debug/pprof/trace,
// /debug/pprof/symbol and /debug/pprof/cmdline. Every response carries the
// headers Vigil-Service, Vigil-Grade, Vigil-Env, Vigil-Version and
// Vigil-Host, the labels the profiler stores the profile with.
func RegisterPprof(mux *http.ServeMux) {
	mux.Handle("/debug/pprof/", labelled(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", labelled(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", labelled(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", labelled(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", labelled(http.HandlerFunc(pprof.Trace)))
}

// PprofHandler is RegisterPprof on a mux of its own, to mount at
// /debug/pprof/.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	RegisterPprof(mux)
	return mux
}

func labelled(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := current.Load(); s != nil {
			hd := w.Header()
			hd.Set(HeaderService, s.cfg.Service)
			hd.Set(HeaderGrade, strconv.Itoa(s.cfg.Grade))
			if s.cfg.Env != "" {
				hd.Set(HeaderEnv, s.cfg.Env)
			}
			if s.cfg.Version != "" {
				hd.Set(HeaderVersion, s.cfg.Version)
			}
			if s.cfg.Host != "" {
				hd.Set(HeaderHost, s.cfg.Host)
			}
		}
		h.ServeHTTP(w, r)
	})
}
