// Package resilience is the SDK's stability toolkit (DESIGN §5): an
// adaptive retry window, dynamic timeouts, a circuit breaker, token-bucket
// rate limiting (optionally a fleet-wide budget shared through Redis),
// overload protection with shedding by service grade, instance masking for
// client-side load balancing and priority lanes.
//
// Each piece is a small value built from a Config with a Default…()
// constructor, safe for concurrent use, and counted in Prometheus
// instruments registered on the Config's Registerer (none when nil); the
// Config's Name becomes the constant label name on every series, so one
// registry holds the breakers of several peers. Every piece that reads the
// time takes Config.Now (time.Now when nil), which the deterministic tests
// and simulations replace with a simulated clock.
//
// The pieces compose: Transport and the gRPC interceptors wrap a call in
// a breaker, a dynamic timeout and the retry window; Middleware and
// UnaryServerInterceptor put a server behind a Guard. See docs/resilience.md.
package resilience
