//go:build race

package logql

// raceEnabled skips allocation tests: under the race detector sync.Pool
// drops items on purpose.
const raceEnabled = true
