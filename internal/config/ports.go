package config

// Default listen addresses, in one place (DESIGN §3, "Default ports").
const (
	DefaultCollectorHTTPAddr = ":4318"
	DefaultIngesterAddr      = ":14270"
	DefaultQueryAddr         = ":16686"
)

// Default listen addresses of the collector's trace receivers, the ports
// their clients already use.
const (
	DefaultOTLPGRPCAddr      = ":4317"
	DefaultZipkinAddr        = ":9411"
	DefaultJaegerHTTPAddr    = ":14268"
	DefaultJaegerCompactAddr = ":6831"
	DefaultJaegerBinaryAddr  = ":6832"
)
