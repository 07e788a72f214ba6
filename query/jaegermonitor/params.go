package jaegermonitor

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// Jaeger's defaults (cmd/query default_params.go).
const (
	defaultLookback = time.Hour
	defaultStep     = 5 * time.Second
	defaultRatePer  = 10 * time.Minute
)

// params are the parameters every metrics query takes. Times and
// durations are in Unix milliseconds, as the Jaeger UI sends them.
type params struct {
	services         []string
	groupByOperation bool
	spanKinds        []string // span_kind label values
	end              time.Time
	lookback         time.Duration
	step             time.Duration
	ratePer          time.Duration
}

// paramError is a bad request parameter: 400, counted by param.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return "parameter " + e.param + ": " + e.msg }

func badParam(param, format string, args ...any) error {
	return &paramError{param: param, msg: fmt.Sprintf(format, args...)}
}

// spanKinds maps the UI's span kinds to the span_kind label values.
var spanKinds = map[string]string{
	"unspecified": "SPAN_KIND_UNSPECIFIED",
	"internal":    "SPAN_KIND_INTERNAL",
	"server":      "SPAN_KIND_SERVER",
	"client":      "SPAN_KIND_CLIENT",
	"producer":    "SPAN_KIND_PRODUCER",
	"consumer":    "SPAN_KIND_CONSUMER",
}

// parseParams reads the parameters of q, as Jaeger's query service does:
// service (one or more, required), groupByOperation, spanKind (one or
// more; server when absent), endTs (now when absent), lookback, step and
// ratePer.
func (a *API) parseParams(q url.Values) (p params, err error) {
	p.services = q["service"]
	if len(p.services) == 0 {
		return p, badParam("service", "missing; please provide at least one service name")
	}
	if len(p.services) > a.opts.MaxServices {
		return p, badParam("service", "%d services; at most %d", len(p.services), a.opts.MaxServices)
	}
	for _, s := range p.services {
		if s == "" {
			return p, badParam("service", "empty service name")
		}
		if !utf8.ValidString(s) {
			return p, badParam("service", "%q is not valid UTF-8", s)
		}
	}
	if v := q.Get("groupByOperation"); v != "" {
		if p.groupByOperation, err = strconv.ParseBool(v); err != nil {
			return p, badParam("groupByOperation", "cannot parse %q as a boolean", v)
		}
	}
	p.spanKinds = []string{spanKinds["server"]}
	if kinds, ok := q["spanKind"]; ok {
		p.spanKinds = p.spanKinds[:0]
		for _, k := range kinds {
			v, ok := spanKinds[k]
			if !ok {
				return p, badParam("spanKind", "unknown span kind %q; one of unspecified, internal, server, client, producer, consumer", k)
			}
			p.spanKinds = append(p.spanKinds, v)
		}
	}
	p.end = a.opts.now()
	if v := q.Get("endTs"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return p, badParam("endTs", "cannot parse %q as Unix milliseconds", v)
		}
		p.end = time.UnixMilli(ms)
	}
	if p.lookback, err = durationParam(q, "lookback", defaultLookback); err != nil {
		return p, err
	}
	if p.step, err = durationParam(q, "step", defaultStep); err != nil {
		return p, err
	}
	if p.ratePer, err = durationParam(q, "ratePer", defaultRatePer); err != nil {
		return p, err
	}
	if n := p.lookback / p.step; n > time.Duration(a.opts.MaxPoints) {
		return p, badParam("step", "lookback %d ms / step %d ms is %d points per series; at most %d", p.lookback.Milliseconds(), p.step.Milliseconds(), n, a.opts.MaxPoints)
	}
	return p, nil
}

// durationParam is the positive duration in milliseconds param, def when
// absent.
func durationParam(q url.Values, param string, def time.Duration) (time.Duration, error) {
	v := q.Get(param)
	if v == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, badParam(param, "cannot parse %q as a positive number of milliseconds", v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// quantileParam is the required quantile of /api/metrics/latencies.
func quantileParam(q url.Values) (float64, error) {
	v := q.Get("quantile")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, badParam("quantile", "cannot parse %q as a number from 0 to 1", v)
	}
	return f, nil
}
