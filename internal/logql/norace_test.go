//go:build !race

package logql

const raceEnabled = false
