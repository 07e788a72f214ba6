package golden

import "slices"

// grpcServerErrors are the status codes that mean the server failed, as
// the SDK marks server spans (sdk/grpc.go): a client's mistake
// (InvalidArgument, NotFound, …) is not the server's error.
const grpcServerErrors = `code=~"Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"`

// conventionPresets are the built-in conventions, by preset name.
var conventionPresets = map[string]Convention{
	// Vigil's SDK (sdk/metrics.go): every series carries service and
	// grade; dc is a target label added by the scrape configuration.
	"vigil-http": {
		Name: "vigil_http", Signal: "vigil_http",
		Requests: Requests{Counter: "vigil_http_requests_total"},
		Errors:   `code=~"5.."`,
		Duration: "vigil_http_request_duration_seconds",
		Inflight: "vigil_http_inflight_requests",
	},
	// The golden signals Vigil's ingester derives from spans
	// (internal/spanmetrics, docs/metrics-spans.md), so that a service
	// that only sends spans has them too: OpenTelemetry's spanmetrics
	// names, Jaeger's labels, latency in milliseconds.
	"vigil-spans": {
		Name: "vigil_spans", Signal: "spans",
		Labels:       Labels{Service: "service_name"},
		Requests:     Requests{Counter: "traces_span_metrics_calls_total"},
		Errors:       `status_code="STATUS_CODE_ERROR"`,
		Duration:     "traces_span_metrics_duration_milliseconds",
		DurationUnit: "milliseconds",
	},
	// Outgoing requests; code is "error" when no response came.
	"vigil-http-client": {
		Name: "vigil_http_client", Signal: "vigil_http_client",
		Requests: Requests{Counter: "vigil_http_client_requests_total"},
		Errors:   `code=~"5..|error"`,
		Duration: "vigil_http_client_request_duration_seconds",
		Inflight: "vigil_http_client_inflight_requests",
		NoSLO:    true,
	},
	"vigil-grpc": {
		Name: "vigil_grpc", Signal: "vigil_grpc",
		Requests: Requests{Counter: "vigil_grpc_requests_total"},
		Errors:   grpcServerErrors,
		Duration: "vigil_grpc_request_duration_seconds",
		Inflight: "vigil_grpc_inflight_requests",
	},
	"vigil-grpc-client": {
		Name: "vigil_grpc_client", Signal: "vigil_grpc_client",
		Requests: Requests{Counter: "vigil_grpc_client_requests_total"},
		Errors:   `code!="OK"`,
		Duration: "vigil_grpc_client_request_duration_seconds",
		Inflight: "vigil_grpc_client_inflight_requests",
		NoSLO:    true,
	},
	// OpenTelemetry HTTP semantic conventions as Prometheus stores them
	// (http.server.request.duration → http_server_request_duration_seconds,
	// attributes with _ for .); the service is the job label, which
	// OTLP ingestion sets from service.namespace/service.name.
	"otel-http": {
		Name: "otel_http", Signal: "http_server",
		Labels:   Labels{Service: "job"},
		Requests: Requests{Histogram: "http_server_request_duration_seconds"},
		Errors:   `http_response_status_code=~"5.."`,
		Duration: "http_server_request_duration_seconds",
		Inflight: "http_server_active_requests",
	},
	// Client side: error.type is set for every failed request (4xx, 5xx
	// and no response).
	"otel-http-client": {
		Name: "otel_http_client", Signal: "http_client",
		Labels:   Labels{Service: "job"},
		Requests: Requests{Histogram: "http_client_request_duration_seconds"},
		Errors:   `error_type!=""`,
		Duration: "http_client_request_duration_seconds",
		Inflight: "http_client_active_requests",
		NoSLO:    true,
	},
	// The common exporter style (client_golang's promhttp examples and
	// many exporters): http_requests_total{code,method,handler}; the
	// service is the job label.
	"exporter": {
		Name: "exporter_http", Signal: "http",
		Labels:   Labels{Service: "job"},
		Requests: Requests{Counter: "http_requests_total"},
		Errors:   `code=~"5.."`,
		Duration: "http_request_duration_seconds",
		Inflight: "http_requests_in_flight",
	},
}

// processPresets are the built-in process conventions.
var processPresets = map[string]Process{
	// The Go client's process and runtime collectors, which the SDK
	// registers without its service and grade labels: they come from the
	// target's in-flight gauge, which every SDK service exposes.
	"vigil": {
		CPU: "process_cpu_seconds_total", Cores: "go_sched_gomaxprocs_threads",
		Memory: "process_resident_memory_bytes", Heap: "go_memstats_heap_inuse_bytes",
		Join: &Join{Metric: "vigil_http_inflight_requests", On: []string{"job", "instance"}},
	},
	// Any target exposing the standard process metrics; the service is
	// the job label.
	"target": {
		Labels: Labels{Service: "job"},
		CPU:    "process_cpu_seconds_total", Memory: "process_resident_memory_bytes",
	},
}

// Presets returns the names of the built-in conventions.
func Presets() []string { return presetNames(conventionPresets) }

func presetNames[V any](m map[string]V) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
