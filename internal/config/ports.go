package config

// Default listen addresses, in one place (DESIGN §3, "Default ports").
const (
	DefaultCollectorHTTPAddr = ":4318"
	DefaultIngesterAddr      = ":14270"
	DefaultQueryAddr         = ":16686"

	// Trace receivers of the collector, on the ports existing clients use.
	DefaultOTLPGRPCAddr      = ":4317"  // OTLP/gRPC (logs and traces)
	DefaultZipkinAddr        = ":9411"  // Zipkin v2, POST /api/v2/spans
	DefaultJaegerHTTPAddr    = ":14268" // Jaeger thrift over HTTP, POST /api/traces
	DefaultJaegerCompactAddr = ":6831"  // UDP, Jaeger agent, thrift compact
	DefaultJaegerBinaryAddr  = ":6832"  // UDP, Jaeger agent, thrift binary

	// DefaultDumpsAddr is the Sentry-compatible dumps intake,
	// POST /api/{project}/envelope/ and /store/.
	DefaultDumpsAddr = ":8410"

	// DefaultProfilerAddr is the profiler's HTTP port: Pyroscope's
	// POST /ingest, /metrics.
	DefaultProfilerAddr = ":7070"

	// DefaultFederationAddr is the metrics federation's HTTP port: the
	// Prometheus HTTP API, /federate, remote write in (POST /api/v1/write).
	DefaultFederationAddr = ":9095"

	// DefaultQueryURL is the query API as a client on the same machine
	// reaches it at its default address.
	DefaultQueryURL = "http://localhost" + DefaultQueryAddr
)
