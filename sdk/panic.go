package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"google.golang.org/grpc"

	"github.com/vigilhq/vigil/sdk/dump"
)

// reportPanic is the one place a recovered panic goes: from
// HTTPMiddleware (where "http", r the request), the gRPC server
// interceptors ("grpc", r nil, ctx naming the method for grpc.Method) and
// Go ("goroutine", r nil). v is the value passed to panic, stack the
// panicking goroutine's stack from debug.Stack taken in the deferred
// function, ctx the request's or goroutine's context, holding its span
// when traced. It must not panic and should return quickly: the request
// waits for it.
//
// With Config.DumpsDSN the panic becomes a dump (package dump: a Sentry
// event with every goroutine, the request and the trace id, spooled on
// disk before this returns and delivered in the background). Always, it
// is logged at ERROR level with its stack through the SDK's logger, so
// that the line carries the trace id, and the dump's event_id when there
// is one.
func (s *state) reportPanic(ctx context.Context, where string, v any, stack []byte, r *http.Request) {
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("panic", panicString(v)), slog.String("where", where))
	if s.dumps != nil {
		rep := dump.Report{Value: v, Stack: stack, Request: r, Tags: map[string]string{"recovered_in": where}}
		if r == nil {
			rep.Transaction, _ = grpc.Method(ctx)
		}
		if id := s.dumps.Capture(ctx, rep); id != "" {
			attrs = append(attrs, slog.String("event_id", id))
		}
	}
	if r != nil {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("route", routeLabel(r.Pattern)), slog.String("path", r.URL.Path))
	}
	attrs = append(attrs, slog.String("stack", string(stack)))
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
				s.reportPanic(ctx, "goroutine", v, debug.Stack(), nil)
				if s.cfg.Repanic {
					panic(v)
				}
			}
		}()
		f(ctx)
	}()
}
