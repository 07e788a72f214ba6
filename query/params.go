package query

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/prometheus/common/model"
)

// paramError is a bad request parameter; it becomes a 400.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(format string, args ...any) error { return &paramError{fmt.Sprintf(format, args...)} }

// parseTime parses a Loki time parameter: Unix seconds (≤ 10 digits),
// Unix nanoseconds, fractional seconds, or RFC 3339.
func parseTime(name, v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	if strings.Contains(v, ".") {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			s, frac := math.Modf(f)
			return int64(s)*1e9 + int64(math.Round(frac*1e9)), nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if len(strings.TrimLeft(v, "-")) <= 10 {
			return n * 1e9, nil
		}
		return n, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixNano(), nil
	}
	return 0, badParam("invalid %s %q: want Unix seconds, Unix nanoseconds or RFC 3339", name, v)
}

// parseDuration parses a duration as Prometheus writes it (1h30m, 1d, 1w)
// or as a number of seconds.
func parseDuration(name, v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, badParam("invalid %s %q: want a positive duration", name, v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(v)
	if err != nil {
		return 0, badParam("invalid %s %q: want a duration such as 15s or 1h", name, v)
	}
	return time.Duration(d), nil
}

// timeRange reads start, end and since; the default range is the last hour.
func timeRange(r *http.Request, now int64) (start, end int64, err error) {
	end, err = parseTime("end", r.FormValue("end"), now)
	if err != nil {
		return 0, 0, err
	}
	def := end - int64(time.Hour)
	if s := r.FormValue("since"); s != "" {
		d, err := parseDuration("since", s)
		if err != nil {
			return 0, 0, err
		}
		def = end - int64(d)
	}
	start, err = parseTime("start", r.FormValue("start"), def)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, badParam("end (%d) is before start (%d)", end, start)
	}
	if err := querylimit.CheckRange(r.Context(), time.Unix(0, start), time.Unix(0, end)); err != nil {
		return 0, 0, err
	}
	return start, end, nil
}

func parseLimit(r *http.Request, max int) (int, error) {
	v := r.FormValue("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badParam("invalid limit %q: want a positive integer", v)
	}
	if n > max {
		return 0, badParam("max entries limit per query exceeded, limit > max_entries_limit (%d > %d)", n, max)
	}
	return n, nil
}

func parseDirection(r *http.Request) (backward bool, err error) {
	switch v := strings.ToLower(r.FormValue("direction")); v {
	case "", "backward":
		return true, nil
	case "forward":
		return false, nil
	default:
		return false, badParam("invalid direction %q: want forward or backward", v)
	}
}

// parseStep reads the step of a range query; Loki's default gives about 250
// points per series, at least one second apart.
func parseStep(r *http.Request, start, end int64) (int64, error) {
	v := r.FormValue("step")
	if v == "" {
		step := (end - start) / 250
		step = step / int64(time.Second) * int64(time.Second)
		return max(step, int64(time.Second)), nil
	}
	d, err := parseDuration("step", v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, badParam("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if (end-start)/int64(d) > 11000 {
		return 0, badParam("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	return int64(d), nil
}
