package model

// Attribute keys that carry the Service, Host, Env and Grade of log records
// and spans: resource attributes in OTLP (queue batches, receivers), tags
// in Jaeger and Zipkin.
const (
	AttrServiceName = "service.name"
	AttrHostName    = "host.name"
	AttrEnv         = "deployment.environment.name"
	// AttrEnvLegacy is the name before semantic conventions 1.27, still
	// read.
	AttrEnvLegacy = "deployment.environment"
	AttrGrade     = "vigil.grade"
)
