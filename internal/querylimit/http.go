package querylimit

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler admits the heavy queries next serves through l (see Heavy): at
// most MaxConcurrent run at once, MaxQueued more wait up to QueueTimeout,
// the rest are answered 429 with Retry-After, in the error shape of the
// API asked. Every request's context carries its per-query limits
// (BudgetOf, CheckRange). A client that goes away while its
// query waits leaves the queue; one that goes away while it runs cancels
// the request's context, which the stores' read loops check.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := l.key(r)
		ctx := l.WithKeyLimits(r.Context(), key)
		// One request from here on: a form POST's body is read once, by
		// ParseForm, and the handler must see the parsed form.
		r = r.WithContext(ctx)
		if r.URL.Path == "/api/v1/query_range" {
			// Prometheus' API has no range limit of its own.
			if err := checkPromRange(r); err != nil {
				WriteError(w, r, http.StatusBadRequest, err)
				return
			}
		}
		if !Heavy(r) {
			next.ServeHTTP(w, r)
			return
		}
		release, err := l.Acquire(ctx, key)
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				w.Header().Set("Retry-After", strconv.Itoa(int(re.RetryAfter.Seconds())))
				WriteError(w, r, http.StatusTooManyRequests, err)
			}
			// Otherwise the client went away while it waited: nobody
			// reads an answer.
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

func (l *Limiter) key(r *http.Request) string {
	if l.o.Key != nil {
		if k := l.o.Key(r); k != "" {
			return k
		}
	}
	return DefaultKey
}

// Heavy reports whether r is a query that reads the stores at a cost that
// grows with the data: LogQL queries, series, volumes, patterns and
// detected fields; trace searches and traces by id; PromQL, /federate and
// Jaeger's monitor; profile merges, diffs, series and top; dump searches
// and Sentry's issue, event and stats lists. Everything else is cheap and
// never waits behind them: the operational endpoints, ingestion (remote
// write, OTLP, Pyroscope pushes), label names and values, service and
// operation lists, build info, rules, alerts, targets, status pages, the
// web UI's page and assets, and Loki's live tail (a long-lived stream bounded by its own limits).
// Unknown paths are heavy.
func Heavy(r *http.Request) bool {
	p := r.URL.Path
	if _, ok := cheapExact[p]; ok {
		return false
	}
	for _, c := range cheapPrefixes {
		if strings.HasPrefix(p, c) {
			return false
		}
	}
	// Sentry's organization, project and team lists, and issue updates.
	if strings.HasPrefix(p, "/api/0/") && (strings.Count(p, "/") <= 5 || strings.HasSuffix(p, "/projects/") ||
		strings.HasSuffix(p, "/teams/") || r.Method == http.MethodPut) {
		return false
	}
	// Jaeger's operations of a service.
	if strings.HasPrefix(p, "/api/services/") && strings.HasSuffix(p, "/operations") {
		return false
	}
	// Dump issue status changes are writes of one document.
	if strings.HasPrefix(p, "/vigil/api/v1/dumps/issues/") && strings.HasSuffix(p, "/status") {
		return false
	}
	return true
}

var cheapExact = map[string]struct{}{
	"/metrics": {}, "/healthz": {}, "/readyz": {}, "/ingest": {},
	"/":                   {}, // the web UI's page; its assets are under /ui/
	"/loki/api/v1/labels": {}, "/loki/api/v1/status/buildinfo": {}, "/loki/api/v1/drilldown-limits": {},
	"/loki/api/v1/tail": {}, "/loki/api/v1/push": {},
	"/api/v1/labels": {}, "/api/v1/metadata": {}, "/api/v1/rules": {}, "/api/v1/alerts": {},
	"/api/v1/targets": {}, "/api/v1/alertmanagers": {}, "/api/v1/format_query": {}, "/api/v1/parse_query": {},
	"/api/v1/targets/metadata": {}, "/api/v1/write": {}, "/api/v1/notifications": {},
	"/api/services": {}, "/api/operations": {}, "/api/v3/services": {}, "/api/v3/operations": {},
	"/vigil/api/v1/profiles/types": {}, "/vigil/api/v1/profiles/labels": {},
	"/querier.v1.QuerierService/ProfileTypes": {}, "/querier.v1.QuerierService/LabelNames": {},
	"/querier.v1.QuerierService/LabelValues": {}, "/vigil/api/v1/whoami": {},
}

var cheapPrefixes = []string{
	"/debug/pprof/", "/loki/api/v1/label/", "/api/v1/label/", "/api/v1/status/", "/api/v1/otlp/",
	"/vigil/api/v1/profiles/label/", "/push.v1.PusherService/", "/v1/",
	"/ui/",
}

// WriteError answers err with status in the error shape of the API r asks:
// Jaeger's v1 {"errors":[…]} and v3 {"error":{…}}, Sentry's {"detail":…},
// Vigil's dumps {"error":…}, connect's {"code":…,"message":…} for
// Pyroscope's querier, and Prometheus' and Loki's {"status":"error",…}
// for the rest.
func WriteError(w http.ResponseWriter, r *http.Request, status int, err error) {
	p, msg := r.URL.Path, err.Error()
	var body any
	switch {
	case strings.HasPrefix(p, "/api/v3/"):
		body = map[string]any{"error": map[string]any{"httpCode": status, "message": msg}}
	case strings.HasPrefix(p, "/api/0/"):
		body = map[string]string{"detail": msg}
	case strings.HasPrefix(p, "/vigil/api/v1/dumps/"):
		body = map[string]string{"error": msg}
	case strings.HasPrefix(p, "/querier.v1.QuerierService/"):
		body = map[string]string{"code": connectCode(status), "message": msg}
	case strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/api/v1/"):
		body = map[string]any{"data": nil, "total": 0, "limit": 0, "offset": 0,
			"errors": []map[string]any{{"code": status, "msg": msg}}}
	default:
		body = map[string]string{"status": "error", "errorType": promErrorType(status), "error": msg}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func promErrorType(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusUnprocessableEntity:
		return "execution"
	}
	return "bad_data"
}

func connectCode(status int) string {
	if status == http.StatusBadRequest {
		return "invalid_argument"
	}
	return "resource_exhausted"
}

// checkPromRange applies --query.max-range to a Prometheus range query's
// start and end (Unix seconds or RFC 3339); parameters Prometheus cannot
// parse are left to its own answer.
func checkPromRange(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return nil
	}
	start, ok1 := parsePromTime(r.Form.Get("start"))
	end, ok2 := parsePromTime(r.Form.Get("end"))
	if !ok1 || !ok2 {
		return nil
	}
	return CheckRange(r.Context(), start, end)
}

func parsePromTime(v string) (time.Time, bool) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}
