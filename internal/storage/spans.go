package storage

import (
	"context"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// SpanWriter is where the span ingester writes. Write returns nil only once
// every span is durable; a span already stored (same trace and span id) is
// not stored twice. Spans the store refuses permanently are reported with a
// *RejectedError once every other span of spans is durable.
type SpanWriter interface {
	Write(ctx context.Context, spans []model.Span) error
}

// SpanReader reads spans. Returned spans belong to the caller.
type SpanReader interface {
	// GetTrace returns the spans of a trace ordered by start time, or
	// ErrTraceNotFound (wrapped or not).
	GetTrace(ctx context.Context, id model.TraceID) ([]model.Span, error)
	// FindTraces returns whole traces with a span matching q, the trace
	// with the latest matching span first, at most q.Limit.
	FindTraces(ctx context.Context, q TraceQuery) ([][]model.Span, error)
	// Services returns the service names, sorted.
	Services(ctx context.Context) ([]string, error)
	// Operations returns a service's operations, of one span kind or of all
	// when spanKind is "", sorted by name and kind.
	Operations(ctx context.Context, service, spanKind string) ([]Operation, error)
}

// DependencyReader computes the calls between services; a SpanReader that
// also implements it serves Jaeger's dependency graph.
type DependencyReader interface {
	// Dependencies returns the calls between services of the spans that
	// started in (endTs-lookback, endTs], endTs in Unix ns: for every span
	// whose parent span belongs to another service, one call from the
	// parent's service to the span's, an error when the child span failed.
	// Sorted by parent, child.
	Dependencies(ctx context.Context, endTs int64, lookback time.Duration) ([]Dependency, error)
}

// TraceQuery selects traces that have one span matching every criterion.
type TraceQuery struct {
	Service   string
	Operation string
	// Tags match span, process or event attributes (and span.kind,
	// error=true), compared as strings (model.TypedAttr.ValueString).
	Tags map[string]string
	// StartMin and StartMax bound the span's start time, Unix ns; 0 is
	// unbounded.
	StartMin, StartMax int64
	// DurationMin and DurationMax bound the span's duration, ns; 0 is
	// unbounded.
	DurationMin, DurationMax int64
	// Limit is the most traces returned; 0 is unlimited.
	Limit int
}

// Operation is an operation name of a service and the kind of its spans
// ("server", "client", "producer", "consumer", "internal" or "", as
// model.SpanKind.Name gives it).
type Operation struct {
	Name     string
	SpanKind string
}

// Dependency is the calls from spans of service Parent to spans of service
// Child.
type Dependency struct {
	Parent, Child         string
	CallCount, ErrorCount uint64
}
