package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// reportPanic is the one place a recovered panic goes: from
// HTTPMiddleware (r is the request), the gRPC server interceptors (r is
// nil; grpc.Method(ctx) names the call) and Go (r is nil). v is the value
// passed to panic, stack the panicking goroutine's stack from
// debug.Stack, ctx the request's or goroutine's context, holding its span
// when traced. It must not panic and should return quickly: the request
// waits for it.
//
// Today it logs the panic at ERROR level, with its stack, through the
// SDK's logger (so the line carries the trace id). The dump reporter
// (sdk/dump: Sentry envelopes through an on-disk spool) plugs in here.
func (s *state) reportPanic(ctx context.Context, v any, stack []byte, r *http.Request) {
	attrs := []slog.Attr{
		slog.String("panic", panicString(v)),
		slog.String("stack", string(stack)),
	}
	if r != nil {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("route", routeLabel(r.Pattern)), slog.String("path", r.URL.Path))
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "panic recovered", attrs...)
}

func panicString(v any) string {
	switch v := v.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// Go runs f in a new goroutine that recovers a panic of f and reports it
// like the middleware does (re-panicking with Config.Repanic, which ends
// the process). Before Init, f runs unprotected.
func Go(f func()) {
	GoContext(context.Background(), func(context.Context) { f() })
}

// GoContext is Go with a context: f receives ctx, and a panic report
// carries ctx's trace id.
func GoContext(ctx context.Context, f func(ctx context.Context)) {
	s := current.Load()
	if s == nil {
		go f(ctx)
		return
	}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				s.m.panics.WithLabelValues("goroutine").Inc()
				s.reportPanic(ctx, v, debug.Stack(), nil)
				if s.cfg.Repanic {
					panic(v)
				}
			}
		}()
		f(ctx)
	}()
}
