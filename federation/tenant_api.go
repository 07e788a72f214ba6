package federation

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/vigilhq/vigil/internal/auth"
)

// tenantAPI guards the parts of Prometheus' API that do not read through
// the tenant's Queryable, which show every tenant at once:
//
//   - /api/v1/alerts and /api/v1/rules list the active alerts of every
//     tenant (the rules are evaluated for all tenants, see perTenant): the
//     tenant's alerts are kept, without TenantLabel, and each alerting
//     rule's state is that of the alerts kept;
//   - /api/v1/status/tsdb counts the series of the whole head by metric
//     name and label value: with auth on it needs the admin scope.
func (f *Federation) tenantAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/status/tsdb":
			if id, ok := auth.FromContext(r.Context()); ok && id.Scopes&auth.ScopeAdmin == 0 {
				auth.WriteError(w, r, &auth.Error{Status: http.StatusForbidden, Reason: auth.ReasonScope,
					Msg: "the TSDB's statistics cover every tenant: they need a key with the admin scope"})
				return
			}
		case "/api/v1/alerts", "/api/v1/rules":
			if f.tenants.seen.Load() {
				f.tenantAlerts(w, r, next)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tenantAlerts answers /api/v1/alerts or /api/v1/rules with the alerts of
// the request's tenant only.
func (f *Federation) tenantAlerts(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	r = r.Clone(r.Context())
	r.Header.Del("Accept-Encoding") // an answer to read, not gzip
	next.ServeHTTP(rec, r)
	var body map[string]any
	if rec.code != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &body) != nil {
		rec.flush(w)
		return
	}
	data, _ := body["data"].(map[string]any)
	value := tenantValue(auth.Tenant(r.Context()))
	if alerts, ok := data["alerts"].([]any); ok {
		data["alerts"] = ownAlerts(alerts, value)
	}
	if groups, ok := data["groups"].([]any); ok {
		for _, g := range groups {
			g, _ := g.(map[string]any)
			rules, _ := g["rules"].([]any)
			for _, rule := range rules {
				rule, _ := rule.(map[string]any)
				if alerts, ok := rule["alerts"].([]any); ok && rule["type"] == "alerting" {
					kept := ownAlerts(alerts, value)
					rule["alerts"] = kept
					rule["state"] = ruleState(kept)
				}
			}
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		rec.flush(w)
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// ownAlerts keeps the alerts whose TenantLabel is value, without it.
func ownAlerts(alerts []any, value string) []any {
	kept := make([]any, 0, len(alerts))
	for _, a := range alerts {
		a, _ := a.(map[string]any)
		ls, _ := a["labels"].(map[string]any)
		if v, _ := ls[TenantLabel].(string); v != value {
			continue
		}
		delete(ls, TenantLabel)
		kept = append(kept, a)
	}
	return kept
}

// ruleState is an alerting rule's state as Prometheus derives it from its
// alerts: firing over pending over inactive.
func ruleState(alerts []any) string {
	state := "inactive"
	for _, a := range alerts {
		a, _ := a.(map[string]any)
		switch a["state"] {
		case "firing":
			return "firing"
		case "pending":
			state = "pending"
		}
	}
	return state
}
