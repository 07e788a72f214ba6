package jaeger

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// ParseTraceID parses 1 to 32 hex digits; Jaeger drops leading zeros.
func ParseTraceID(s string) (model.TraceID, error) {
	var id model.TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, fmt.Errorf("trace id %q: want 1 to 32 hex digits", s)
	}
	b, err := hex.DecodeString(strings.Repeat("0", 32-len(s)) + s)
	if err != nil {
		return id, fmt.Errorf("trace id %q: want 1 to 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

func parseInt(name, v, what string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badParam(name, "cannot parse %q as an integer (%s)", v, what)
	}
	return n, nil
}

// parseDuration parses Go durations ("1.2ms", "100us", "1s") and also a
// number of days ("2d"), which the Jaeger UI's lookback uses.
func parseDuration(name, v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.ParseFloat(d, 64); err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, badParam(name, "cannot parse %q as a duration (e.g. 1.2ms, 100us, 1s)", v)
	}
	return d, nil
}

// parseTraceQuery reads the parameters of /api/traces.
func (a *API) parseTraceQuery(r *http.Request) (storage.TraceQuery, error) {
	f := r.Form
	q := storage.TraceQuery{Service: f.Get("service"), Operation: f.Get("operation"), Limit: a.opts.DefaultLimit}
	if q.Service == "" {
		return q, badParam("service", "is required (or give traceID)")
	}
	if v := f.Get("limit"); v != "" {
		n, err := parseInt("limit", v, "number of traces")
		if err != nil {
			return q, err
		}
		if n < 0 {
			return q, badParam("limit", "must not be negative, got %d", n)
		}
		if n > 0 {
			q.Limit = int(min(n, int64(a.opts.MaxLimit)))
		}
	}
	end := a.opts.now().UnixNano()
	if v := f.Get("end"); v != "" {
		us, err := parseInt("end", v, "microseconds since the Unix epoch")
		if err != nil {
			return q, err
		}
		end = us * 1000
	}
	lookback := a.opts.DefaultLookback
	if v := f.Get("lookback"); v != "" && v != "custom" {
		d, err := parseDuration("lookback", v)
		if err != nil {
			return q, err
		}
		lookback = d
	}
	start := end - int64(lookback)
	if v := f.Get("start"); v != "" {
		us, err := parseInt("start", v, "microseconds since the Unix epoch")
		if err != nil {
			return q, err
		}
		start = us * 1000
	}
	if start > end {
		return q, badParam("start", "%d is after end %d", start/1000, end/1000)
	}
	if err := querylimit.CheckRange(r.Context(), time.Unix(0, start), time.Unix(0, end)); err != nil {
		return q, err
	}
	q.StartMin, q.StartMax = start, end
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"minDuration", &q.DurationMin}, {"maxDuration", &q.DurationMax}} {
		if v := f.Get(p.name); v != "" {
			d, err := parseDuration(p.name, v)
			if err != nil {
				return q, err
			}
			*p.dst = int64(d)
		}
	}
	if q.DurationMax != 0 && q.DurationMax < q.DurationMin {
		return q, badParam("maxDuration", "%s is less than minDuration %s", f.Get("maxDuration"), f.Get("minDuration"))
	}
	tags, err := parseTags(f["tags"], f["tag"])
	if err != nil {
		return q, err
	}
	q.Tags = tags
	return q, nil
}

// parseTags reads tags={"k":"v"} (JSON, as the Jaeger UI sends it; non-string
// values are compared by their JSON text) and repeated tag=k:v.
func parseTags(jsonTags, pairs []string) (map[string]string, error) {
	var tags map[string]string
	set := func(k, v string) {
		if tags == nil {
			tags = map[string]string{}
		}
		tags[k] = v
	}
	for _, js := range jsonTags {
		if js == "" {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			return nil, badParam("tags", `cannot parse %q as a JSON object such as {"http.status_code":"500"}: %v`, js, err)
		}
		for k, raw := range m {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				s = string(raw)
			}
			set(k, s)
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" {
			return nil, badParam("tag", "%q is not key:value", p)
		}
		set(k, v)
	}
	return tags, nil
}
