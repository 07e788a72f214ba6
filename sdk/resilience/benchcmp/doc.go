// Package benchcmp holds only benchmarks: sdk/resilience's breaker,
// limiter and retry-window bookkeeping side by side with sony/gobreaker
// and golang.org/x/time/rate, measured in the same run. It is its own
// module so that the SDK's users never pull those libraries in.
package benchcmp
