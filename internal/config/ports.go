package config

// Default listen addresses, in one place (DESIGN §3, "Default ports").
const (
	DefaultCollectorHTTPAddr = ":4318"
	DefaultIngesterAddr      = ":14270"
	DefaultQueryAddr         = ":16686"
)
