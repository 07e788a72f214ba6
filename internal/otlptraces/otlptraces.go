// Package otlptraces converts between Vigil's spans and OTLP traces
// (ExportTraceServiceRequest), the encoding of span batches in Vigil's queue
// (topic vigil.spans) and of the OTLP trace receivers. The mapping is
// documented in docs/format/spans.md.
package otlptraces

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vigilhq/vigil/internal/model"
)

// Attribute keys with a fixed meaning in Vigil's span batches, besides the
// resource's model.AttrServiceName, AttrHostName, AttrEnv and AttrGrade.
const (
	// AttrWarnings (span attribute, array of strings) carries
	// model.Span.Warnings.
	AttrWarnings = "vigil.warnings"
	// AttrRefType (link attribute) marks a link that is a CHILD_OF
	// reference other than the parent, as Jaeger's OTLP translator does.
	AttrRefType = "opentracing.ref_type"
	// Values of AttrRefType.
	RefTypeChildOf     = "child_of"
	RefTypeFollowsFrom = "follows_from"
	// AttrScopeName and AttrScopeVersion receive the instrumentation scope
	// of decoded spans, as in Jaeger's OTLP translator.
	AttrScopeName    = "otel.scope.name"
	AttrScopeVersion = "otel.scope.version"
)

// Marshal encodes spans as an OTLP ExportTraceServiceRequest in protobuf.
func Marshal(spans []model.Span) ([]byte, error) {
	b, err := ptraceotlp.NewExportRequestFromTraces(ToTraces(spans)).MarshalProto()
	if err != nil {
		return nil, fmt.Errorf("cannot encode %d spans as OTLP: %w", len(spans), err)
	}
	return b, nil
}

// Unmarshal decodes an OTLP ExportTraceServiceRequest in protobuf and
// appends its spans to dst.
func Unmarshal(dst []model.Span, data []byte) ([]model.Span, error) {
	if out, ok := decodeFast(dst, data); ok {
		return out, nil
	}
	return unmarshalPdata(dst, data)
}

func unmarshalPdata(dst []model.Span, data []byte) ([]model.Span, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(data); err != nil {
		return dst, fmt.Errorf("cannot decode OTLP traces protobuf: %w", err)
	}
	return FromTraces(dst, req.Traces()), nil
}

// UnmarshalJSON decodes an OTLP ExportTraceServiceRequest in OTLP/JSON and
// appends its spans to dst.
func UnmarshalJSON(dst []model.Span, data []byte) ([]model.Span, error) {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(data); err != nil {
		return dst, fmt.Errorf("cannot decode OTLP traces JSON: %w", err)
	}
	return FromTraces(dst, req.Traces()), nil
}
