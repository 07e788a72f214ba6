// Package sdktest checks the Go SDK (module github.com/vigilhq/vigil/sdk)
// against a real collector: a service instrumented with it, and one on
// jaeger-client-go, send their spans, logs and panic dumps to
// collector.New, whose queues the tests read. It has no code of its own.
package sdktest
