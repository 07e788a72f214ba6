package logql

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the units of LogQL durations: Go's time.ParseDuration
// units plus Prometheus' d, w and y.
var durationUnits = map[string]uint64{
	"ns": 1,
	"us": uint64(time.Microsecond),
	"µs": uint64(time.Microsecond), // U+00B5 micro sign
	"μs": uint64(time.Microsecond), // U+03BC Greek mu
	"ms": uint64(time.Millisecond),
	"s":  uint64(time.Second),
	"m":  uint64(time.Minute),
	"h":  uint64(time.Hour),
	"d":  uint64(24 * time.Hour),
	"w":  uint64(7 * 24 * time.Hour),
	"y":  uint64(365 * 24 * time.Hour),
}

var errDurationSyntax = errors.New("want a number followed by a unit (ns, us, ms, s, m, h, d, w, y)")

// parseDuration parses durations such as 5m, 1h30m, 1.5s, -250ms and 1d. It
// accepts everything time.ParseDuration accepts, plus the units d, w and y.
func parseDuration(s string) (time.Duration, error) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errDurationSyntax
	}
	var total uint64
	for s != "" {
		i := 0
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		intPart := s[:i]
		s = s[i:]
		var frac, scale uint64 = 0, 1
		hasFrac := false
		if s != "" && s[0] == '.' {
			s = s[1:]
			j := 0
			for ; j < len(s) && isDigit(s[j]); j++ {
				if frac > math.MaxInt64/10 {
					continue // beyond precision: ignore further digits
				}
				frac = frac*10 + uint64(s[j]-'0')
				scale *= 10
				hasFrac = true
			}
			s = s[j:]
		}
		if intPart == "" && !hasFrac {
			return 0, errDurationSyntax
		}
		j := 0
		for j < len(s) && s[j] != '.' && !isDigit(s[j]) {
			j++
		}
		unit, ok := durationUnits[s[:j]]
		if !ok {
			return 0, errDurationSyntax
		}
		s = s[j:]
		var v uint64
		if intPart != "" {
			var err error
			if v, err = strconv.ParseUint(intPart, 10, 64); err != nil || v > math.MaxInt64/unit {
				return 0, errors.New("duration out of range")
			}
		}
		v *= unit
		if hasFrac {
			v += uint64(float64(frac) * (float64(unit) / float64(scale)))
		}
		total += v
		if v > 1<<63 || total > 1<<63 {
			return 0, errors.New("duration out of range")
		}
	}
	if neg {
		return -time.Duration(total), nil
	}
	if total > math.MaxInt64 {
		return 0, errors.New("duration out of range")
	}
	return time.Duration(total), nil
}

func validDuration(s string) bool {
	_, err := parseDuration(s)
	return err == nil
}

// formatDuration prints d the way Prometheus prints ranges (1h30m, 1d, 500ms)
// when d is a whole number of milliseconds, and as time.Duration.String
// otherwise. parseDuration reads both back.
func formatDuration(d time.Duration) string {
	if d <= 0 || d%time.Millisecond != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		size time.Duration
	}{
		{"y", 365 * 24 * time.Hour},
		{"w", 7 * 24 * time.Hour},
		{"d", 24 * time.Hour},
		{"h", time.Hour},
		{"m", time.Minute},
		{"s", time.Second},
		{"ms", time.Millisecond},
	} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.size
		}
	}
	return b.String()
}

type byteUnit struct {
	name string
	size uint64
}

// byteUnits lists the byte size units, matched case-insensitively; kB and
// KB are 1000, KiB is 1024.
var byteUnits = []byteUnit{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15}, {"EB", 1e18},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50}, {"EiB", 1 << 60},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
}

var errBytesSyntax = errors.New("want a number followed by a unit such as B, KB, MiB")

// parseBytes parses byte sizes such as 512, 10KB, 1.5 MiB or 2gb.
func parseBytes(s string) (uint64, error) {
	i := 0
	for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
		i++
	}
	num := s[:i]
	unitName := strings.TrimLeft(s[i:], " ")
	if num == "" || !isDecimal(num) {
		return 0, errBytesSyntax
	}
	unit := uint64(0)
	if unitName == "" {
		unit = 1
	}
	for _, u := range byteUnits {
		if strings.EqualFold(unitName, u.name) {
			unit = u.size
			break
		}
	}
	if unit == 0 {
		return 0, errBytesSyntax
	}
	if !strings.Contains(num, ".") {
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil || v > math.MaxUint64/unit {
			return 0, errors.New("byte size out of range")
		}
		return v * unit, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errBytesSyntax
	}
	v := f * float64(unit)
	if v >= math.MaxUint64 {
		return 0, errors.New("byte size out of range")
	}
	return uint64(v), nil
}

// validBytes reports whether s is a byte size literal in a query: a number
// directly followed by a unit.
func validBytes(s string) bool {
	if strings.Contains(s, " ") {
		return false
	}
	_, err := parseBytes(s)
	return err == nil && !isDecimal(s)
}

// formatBytes prints v exactly, with the unit that gives the shortest text.
func formatBytes(v uint64) string {
	best := strconv.FormatUint(v, 10) + "B"
	for _, u := range byteUnits[1:13] {
		if v >= u.size && v%u.size == 0 {
			if s := strconv.FormatUint(v/u.size, 10) + u.name; len(s) < len(best) {
				best = s
			}
		}
	}
	return best
}
