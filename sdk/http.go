package sdk

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPMiddleware instruments next, normally a *http.ServeMux: every
// request is counted in the golden metrics with the route pattern the mux
// matched (Request.Pattern, never the raw path; "unmatched" when none
// did), runs in a server span that continues the caller's trace
// (traceparent or uber-trace-id), and is protected from panics: a panic is
// reported and answered 500 (or re-panicked with Config.Repanic).
//
// The route is read from the request the mux received, after it returns;
// a handler that hands the mux a copy of the request (http.StripPrefix,
// Request.WithContext) before it is matched shows "unmatched": wrap the
// inner mux instead.
func HTTPMiddleware(next http.Handler) http.Handler { return &middleware{next: next} }

type middleware struct{ next http.Handler }

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := current.Load()
	if s == nil {
		m.next.ServeHTTP(w, r)
		return
	}
	s.serveHTTP(m.next, w, r)
}

func (s *state) serveHTTP(next http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.m.httpInflight.Inc()
	rw := &responseWriter{ResponseWriter: w}
	var span trace.Span
	if s.tracer != nil {
		ctx := s.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = s.tracer.Start(ctx, r.Method, serverSpan...)
		r = r.WithContext(ctx)
	}
	defer func() {
		v := recover()
		if v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared as net/http does
				s.m.httpInflight.Dec()
				if span != nil {
					span.End()
				}
				panic(v)
			}
			s.m.panics.WithLabelValues("http").Inc()
			s.reportPanic(r.Context(), "http", v, debug.Stack(), r)
			if !rw.wrote {
				http.Error(rw, "internal server error", http.StatusInternalServerError)
			}
			rw.status = http.StatusInternalServerError
		}
		s.m.httpInflight.Dec()
		route, method := routeLabel(r.Pattern), methodLabel(r.Method)
		d := time.Since(start)
		hs := s.m.httpSeries(route, method, rw.code())
		hs.requests.Inc()
		obs := hs.duration
		sampled := false
		if span != nil {
			if span.IsRecording() {
				endServerSpan(span, r, route, rw.code(), v)
			}
			if sc := span.SpanContext(); sc.IsSampled() && hs.exemplarDue(start) {
				sampled = true
				obs.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			}
		}
		if !sampled {
			obs.Observe(d.Seconds())
		}
		if v != nil && s.cfg.Repanic {
			panic(v)
		}
	}()
	next.ServeHTTP(rw, r)
}

func endServerSpan(span trace.Span, r *http.Request, route string, code int, panicked any) {
	attrs := [4]attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.Int("http.response.status_code", code),
	}
	n := 3
	if r.Pattern != "" {
		span.SetName(r.Method + " " + route)
		attrs[n] = attribute.String("http.route", route)
		n++
	}
	span.SetAttributes(attrs[:n]...)
	switch {
	case panicked != nil:
		span.SetStatus(codes.Error, "panic")
		span.AddEvent("panic", trace.WithAttributes(attribute.String("exception.message", panicString(panicked))))
	case code >= 500:
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// responseWriter records the status code. It keeps http.Flusher,
// http.Hijacker and io.ReaderFrom, and Unwrap lets http.ResponseController reach the rest.
type responseWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *responseWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("vigil sdk: the underlying ResponseWriter cannot hijack")
	}
	w.status, w.wrote = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

// ReadFrom keeps io.Copy to the response as fast as without the
// middleware (sendfile for files).
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
