// Package api serves dumps on the query port: Vigil's own JSON under
// /vigil/api/v1/dumps/ (issues, events with all goroutines, status
// changes) and the subset of Sentry's web API that Grafana's Sentry data
// source calls (organizations, projects, teams, tags, issues, events,
// events-stats), with Bearer-token auth. A Sentry project is a Vigil
// service: its id is the Sentry project id of the intake URL, its slug the
// service name. See docs/dumps.md, section "API".
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/storage"
)

// Store is what the API reads and changes; both dump stores implement it.
type Store interface {
	storage.DumpReader
	storage.DumpStatsReader
	storage.IssueStatusSetter
}

// Options configures the API.
type Options struct {
	// Org is the slug of the one Sentry organization ("vigil").
	Org string
	// Tokens are the accepted Bearer tokens of the Sentry API; empty means
	// no token is asked for (as for the rest of the query port).
	Tokens []string
	// LatestEvents is how many events an issue is shown with.
	LatestEvents int
	// MaxScanEvents bounds the events one Sentry events or events-stats
	// query reads to compute fields and groups.
	MaxScanEvents int
	// Timeout bounds one request.
	Timeout time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now func() time.Time
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions() Options {
	return Options{Org: "vigil", LatestEvents: 20, MaxScanEvents: 10000, Timeout: time.Minute, Logger: slog.Default()}
}

// API serves the dumps query endpoints.
type API struct {
	opts    Options
	store   Store
	metrics *httpserver.RequestMetrics
}

// New returns the API over s.
func New(opts Options, s Store) *API {
	d := DefaultOptions()
	if opts.Org == "" {
		opts.Org = d.Org
	}
	if opts.LatestEvents <= 0 {
		opts.LatestEvents = d.LatestEvents
	}
	if opts.MaxScanEvents <= 0 {
		opts.MaxScanEvents = d.MaxScanEvents
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.Logger == nil {
		opts.Logger = d.Logger
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	return &API{opts: opts, store: s, metrics: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{
		Subsystem: "dumps_api", Label: "endpoint",
		Help:         "Dumps query API requests (Vigil JSON and the Sentry web API subset) by endpoint and status code.",
		DurationHelp: "Dumps query API request duration by endpoint.",
	}, opts.Registerer)}
}

// RegisterHTTP adds the dumps endpoints to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	v := func(method, path, name string, h handler) {
		mux.HandleFunc(method+" /vigil/api/v1/dumps"+path, a.instrument(name, false, h))
	}
	v("GET", "/issues", "issues", a.vigilIssues)
	v("GET", "/issues/{id}", "issue", a.vigilIssue)
	v("PUT", "/issues/{id}/status", "issue_status", a.vigilStatus)
	v("POST", "/issues/{id}/status", "issue_status", a.vigilStatus)
	v("GET", "/events/{id}", "event", a.vigilEvent)

	s := func(path, name string, h handler) {
		mux.HandleFunc("GET /api/0"+path, a.instrument(name, true, h))
	}
	s("/organizations/", "sentry_organizations", a.sentryOrganizations)
	s("/organizations/{org}/", "sentry_organization", a.sentryOrganization)
	s("/organizations/{org}/projects/", "sentry_projects", a.sentryProjects)
	s("/organizations/{org}/teams/", "sentry_teams", a.sentryTeams)
	s("/teams/{org}/{team}/projects/", "sentry_team_projects", a.sentryTeamProjects)
	s("/organizations/{org}/tags/", "sentry_tags", a.sentryTags)
	s("/organizations/{org}/issues/", "sentry_issues", a.sentryIssues)
	s("/organizations/{org}/events/", "sentry_events", a.sentryEvents)
	s("/organizations/{org}/events-stats/", "sentry_events_stats", a.sentryEventsStats)
	mux.HandleFunc("PUT /api/0/organizations/{org}/issues/{id}/", a.instrument("sentry_issue_update", true, a.sentryUpdateIssue))
}

type handler func(w http.ResponseWriter, r *http.Request) error

// apiError is an error with the HTTP status it answers.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badParam(name, format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "parameter " + name + ": " + fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// statusOf maps a handler's error to its status: the apiError's, 404 for
// an unknown issue or event, 504 for a timeout, 500 otherwise.
func statusOf(err error) int {
	var ae *apiError
	if code, ok := querylimit.StatusOf(err); ok {
		return code
	}
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, storage.ErrIssueNotFound), errors.Is(err, storage.ErrEventNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// instrument wraps a handler: timeout, form parsing, the Sentry API's
// token check, errors as JSON ({"detail": …} as Sentry answers, or
// {"error": …}), metrics.
func (a *API) instrument(name string, sentry bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		var err error
		if sentry && !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			err = &apiError{http.StatusUnauthorized, "Invalid token: send Authorization: Bearer <token> with a token of --dumps.tokens"}
		} else if perr := r.ParseForm(); perr != nil {
			err = &apiError{http.StatusBadRequest, "cannot parse request parameters: " + perr.Error()}
		} else if org := r.PathValue("org"); sentry && org != "" && org != a.opts.Org {
			err = notFound("organization %q not found: this Vigil's organization is %q", org, a.opts.Org)
		} else {
			err = h(w, r)
		}
		code := http.StatusOK
		if err != nil {
			if code = statusOf(err); code == http.StatusInternalServerError {
				a.opts.Logger.Warn("dumps query failed", "endpoint", name, "err", err)
			}
			if sentry {
				httpserver.WriteJSON(w, code, map[string]string{"detail": err.Error()})
			} else {
				httpserver.WriteJSON(w, code, map[string]string{"error": err.Error()})
			}
		}
		a.metrics.Observe(name, code, t0)
	}
}

// authorized reports whether r carries an accepted token, or none is
// configured.
func (a *API) authorized(r *http.Request) bool {
	if len(a.opts.Tokens) == 0 {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	for _, t := range a.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return true
		}
	}
	return false
}
