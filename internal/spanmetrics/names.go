package spanmetrics

import "github.com/vigilhq/vigil/internal/model"

// Names of the series, as the OpenTelemetry Collector's spanmetrics
// connector (namespace traces.span.metrics, unit ms) exposes them through
// Prometheus, and as Jaeger's Prometheus metrics reader queries them with
// normalize_calls and normalize_duration set (latency_unit "ms").
const (
	CallsMetric    = "traces_span_metrics_calls_total"
	DurationMetric = "traces_span_metrics_duration_milliseconds"

	// The edges between services keep the names the ingester has always
	// exposed.
	EdgeCallsMetric   = "vigil_dependency_calls_total"
	EdgeErrorsMetric  = "vigil_dependency_errors_total"
	EdgeLatencyMetric = "vigil_dependency_latency_seconds"
)

// Label names.
const (
	LabelService    = "service_name"
	LabelOperation  = "span_name"
	LabelSpanKind   = "span_kind"
	LabelStatusCode = "status_code"
	LabelGrade      = "grade"
	LabelParent     = "parent"
	LabelChild      = "child"
	// LabelTenant is the tenant of a series, the federation's tenant label
	// (docs/security.md, "Tenancy of metrics"): empty — absent once stored
	// or scraped — for the default tenant's spans.
	LabelTenant = "vigil_tenant"
)

// Other is the operation (and, past the series cap, the service) that
// spans beyond the cardinality bounds are counted under.
const Other = "other"

// UnknownService is the service of spans that carry none, as OpenTelemetry
// names it.
const UnknownService = "unknown_service"

// StatusError is the status_code of failed spans; Jaeger's error rate is
// the calls with it over all calls.
const StatusError = "STATUS_CODE_ERROR"

var statusNames = [...]string{"STATUS_CODE_UNSET", "STATUS_CODE_OK", StatusError}

// StatusName is the status_code label of an OTLP status code.
func StatusName(code uint8) string {
	if int(code) < len(statusNames) {
		return statusNames[code]
	}
	return statusNames[0]
}

var kindNames = [...]string{
	model.SpanKindUnspecified: "SPAN_KIND_UNSPECIFIED",
	model.SpanKindInternal:    "SPAN_KIND_INTERNAL",
	model.SpanKindServer:      "SPAN_KIND_SERVER",
	model.SpanKindClient:      "SPAN_KIND_CLIENT",
	model.SpanKindProducer:    "SPAN_KIND_PRODUCER",
	model.SpanKindConsumer:    "SPAN_KIND_CONSUMER",
}

// KindName is the span_kind label of a span kind, OpenTelemetry's enum
// name ("SPAN_KIND_SERVER").
func KindName(k model.SpanKind) string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return kindNames[0]
}

var gradeNames = [...]string{"", "1", "2", "3", "4"}

func gradeName(g int) string {
	if g > 0 && g < len(gradeNames) {
		return gradeNames[g]
	}
	return ""
}
