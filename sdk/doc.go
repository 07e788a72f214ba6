// Package sdk instruments a Go service for Vigil with one call.
//
//	shutdown, err := sdk.Init(sdk.Config{Service: "checkout", Grade: 1})
//	if err != nil { log.Fatal(err) }
//	defer shutdown(context.Background())
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /orders/{id}", getOrder)
//	mux.Handle("GET /metrics", sdk.MetricsHandler())
//	http.ListenAndServe(":8080", sdk.HTTPMiddleware(mux))
//
// Init sets up golden metrics (prometheus/client_golang), traces
// (OpenTelemetry, exported over OTLP to the Vigil collector, propagated as
// W3C traceparent and Jaeger uber-trace-id), trace-correlated JSON logs
// (a log/slog handler, optionally shipped to the collector's logs API) and
// panic recovery in HTTPMiddleware, the gRPC server interceptors and Go.
// With Config.DumpsDSN every recovered panic, and every fatal runtime error
// (reported on the next start, or by a watching process), becomes a dump:
// a Sentry event for Vigil's dumps intake, through an on-disk spool
// (package dump). Every Config field can also be set by a VIGIL_…
// environment variable; see docs/sdk.md.
//
// The SDK holds one process-wide state set by Init; the entry points look
// it up on every call, so a middleware built before Init instruments once
// Init returned, and passes requests through untouched before.
package sdk
