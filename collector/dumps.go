package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/sentry"
)

// DumpsOptions configures the Sentry-compatible dumps intake.
type DumpsOptions struct {
	// Keys are the accepted DSN public keys, each "KEY" (any project) or
	// "KEY/PROJECT" (that project only). With none, every request is
	// refused.
	Keys []string
	// Authenticator, when set, judges the DSN keys instead of Keys: the
	// tenants' sentry_keys of --auth.config.
	Authenticator DSNAuthenticator
	// Limits are Sentry's size limits; see sentry.DefaultLimits.
	Limits sentry.Limits
	// RetryAfter is how long a client is asked to wait when the queue is
	// full (429, Retry-After and X-Sentry-Rate-Limits).
	RetryAfter time.Duration
}

// DSNAuthenticator judges a DSN public key sent to a project; its refusals
// are *auth.Error, answered with their status.
type DSNAuthenticator interface {
	AuthenticateDSN(key, project string) (auth.Identity, error)
}

// DefaultDumpsOptions returns Sentry's limits and no keys.
func DefaultDumpsOptions() DumpsOptions {
	return DumpsOptions{Limits: sentry.DefaultLimits(), RetryAfter: 2 * time.Second}
}

// dumpsIntake serves POST /api/{project}/envelope/ and
// POST /api/{project}/store/: each error event becomes one model.Dump
// record (key: the project id, value: the dump as JSON) on the dumps
// queue; see docs/dumps.md, "Intake".
type dumpsIntake struct {
	producer queue.Producer
	opts     DumpsOptions
	keys     map[string]string // public key → project, "" for any
	logger   *slog.Logger
	metrics  *httpMetrics
	items    *prometheus.CounterVec // type, outcome
	// admission is the collector's overload protection; nil admits all.
	admission *admission
	// limits are the tenants' limits; nil limits nothing.
	limits *tenantLimiter
}

const (
	receiverEnvelope = "sentry_envelope"
	receiverStore    = "sentry_store"
)

func newDumpsIntake(p queue.Producer, o DumpsOptions, m *httpMetrics, logger *slog.Logger, reg prometheus.Registerer) (*dumpsIntake, error) {
	if o.Limits == (sentry.Limits{}) {
		o.Limits = sentry.DefaultLimits()
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 2 * time.Second
	}
	in := &dumpsIntake{producer: p, opts: o, keys: map[string]string{}, logger: logger, metrics: m,
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "sentry_items_total",
			Help: "Items of accepted Sentry envelopes and store requests, by item type and outcome (queued, ignored).",
		}, []string{"type", "outcome"}),
	}
	for _, k := range o.Keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		key, project, _ := strings.Cut(k, "/")
		if !validProject(project) && project != "" {
			return nil, fmt.Errorf("--dumps.keys: %q: the project after / must be a number (the DSN's project id)", k)
		}
		in.keys[key] = project
	}
	if reg != nil {
		reg.MustRegister(in.items)
	}
	return in, nil
}

func (in *dumpsIntake) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/{project}/envelope/{$}", in.handleEnvelope)
	mux.HandleFunc("POST /api/{project}/store/{$}", in.handleStore)
	mux.HandleFunc("OPTIONS /api/{project}/envelope/{$}", in.preflight)
	mux.HandleFunc("OPTIONS /api/{project}/store/{$}", in.preflight)
}

// cors lets browser SDKs post from any origin and read the answers they
// act on, as Sentry's ingestion does.
func cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After")
}

func (in *dumpsIntake) preflight(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "X-Sentry-Auth, X-Requested-With, Origin, Accept, Content-Type, Content-Encoding, Authorization, Authentication, sentry-trace, baggage")
	h.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusOK)
}

// intakeError is a refusal: the status, the reason label of
// vigil_collector_rejected_records_total, and the detail for the client.
type intakeError struct {
	code   int
	reason string
	detail string
	// retryAfter, when set, is Retry-After of a 429 from overload
	// protection.
	retryAfter string
	// rateReason is the reason code of X-Sentry-Rate-Limits with
	// retryAfter; empty: overloaded.
	rateReason string
}

func refuse(code int, reason, format string, args ...any) *intakeError {
	return &intakeError{code: code, reason: reason, detail: fmt.Sprintf(format, args...)}
}

func (in *dumpsIntake) reply(w http.ResponseWriter, receiver string, e *intakeError, id string) {
	if e == nil {
		in.metrics.requests.Count(receiver, http.StatusOK)
		resp := map[string]string{}
		if id != "" {
			resp["id"] = id
		}
		httpserver.WriteJSON(w, http.StatusOK, resp)
		return
	}
	in.metrics.requests.Count(receiver, e.code)
	in.metrics.rejected.WithLabelValues(receiver, e.reason).Inc()
	switch {
	case e.code == http.StatusTooManyRequests && e.retryAfter != "":
		w.Header().Set("Retry-After", e.retryAfter)
		reason := cmp.Or(e.rateReason, "overloaded")
		w.Header().Set("X-Sentry-Rate-Limits", e.retryAfter+"::organization:"+reason)
	case e.code == http.StatusTooManyRequests:
		secs := max(1, int(in.opts.RetryAfter.Round(time.Second)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("X-Sentry-Rate-Limits", fmt.Sprintf("%d::organization:queue_full", secs))
	}
	w.Header().Set("X-Sentry-Error", e.detail)
	httpserver.WriteJSON(w, e.code, map[string]string{"detail": e.detail})
}

func validProject(p string) bool {
	if p == "" || len(p) > 19 {
		return false
	}
	_, err := strconv.ParseUint(p, 10, 64)
	return err == nil
}

// authorize checks key against --dumps.keys, or the Authenticator, for
// project; with the Authenticator, it returns r carrying the key's tenant.
func (in *dumpsIntake) authorize(r *http.Request, key, project string) (*http.Request, *intakeError) {
	if a := in.opts.Authenticator; a != nil {
		id, err := a.AuthenticateDSN(key, project)
		var e *auth.Error
		switch {
		case errors.As(err, &e) && e.Status == http.StatusForbidden:
			return r, refuse(http.StatusForbidden, "forbidden", "%s", e.Msg)
		case err != nil:
			return r, refuse(http.StatusUnauthorized, "unauthorized", "%v", err)
		}
		return r.WithContext(auth.WithIdentity(r.Context(), id)), nil
	}
	return r, in.authorizeKeys(key, project)
}

// authorizeKeys checks key against --dumps.keys for project.
func (in *dumpsIntake) authorizeKeys(key, project string) *intakeError {
	if len(in.keys) == 0 {
		return refuse(http.StatusUnauthorized, "unauthorized", "this intake accepts no DSN key: start Vigil with --dumps.keys (all-in-one creates one on first start)")
	}
	bound, ok := in.keys[key]
	if !ok {
		return refuse(http.StatusForbidden, "forbidden", "DSN key %q is not accepted here; use a key listed in --dumps.keys", clipKey(key))
	}
	if bound != "" && bound != project {
		return refuse(http.StatusForbidden, "forbidden", "DSN key %q is for project %s, not project %s", clipKey(key), bound, project)
	}
	return nil
}

func clipKey(k string) string {
	if len(k) > 40 {
		return k[:40] + "…"
	}
	return k
}

func (in *dumpsIntake) handleEnvelope(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	ids, err := in.envelope(w, r)
	id := ""
	if len(ids) > 0 {
		id = ids[0]
	}
	in.reply(w, receiverEnvelope, err, id)
}

func (in *dumpsIntake) envelope(w http.ResponseWriter, r *http.Request) ([]string, *intakeError) {
	project := r.PathValue("project")
	if !validProject(project) {
		return nil, refuse(http.StatusBadRequest, "invalid", "project id %q in the URL is not a number; the DSN's last path element is the project id", clipKey(project))
	}
	auth, found, err := sentry.RequestAuth(r)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "unauthorized", "%v", err)
	}
	if found {
		var e *intakeError
		if r, e = in.authorize(r, auth.Key, project); e != nil {
			return nil, e
		}
	}
	l := in.opts.Limits
	body, closeBody, e := decodeBody(w, r, "envelope", l.EnvelopeCompressed, l.EnvelopeCompressed, l.EnvelopeDecompressed)
	if e != nil {
		return nil, e
	}
	defer closeBody()
	er, err := sentry.NewEnvelopeReader(body, l)
	if err != nil {
		return nil, readError(err)
	}
	hdr := er.Header()
	if !found {
		if hdr.DSN == "" {
			return nil, refuse(http.StatusUnauthorized, "unauthorized", "missing authentication: send the DSN key in X-Sentry-Auth, the sentry_key query parameter, or the envelope header's dsn")
		}
		key, dsnProject, err := sentry.KeyFromDSN(hdr.DSN)
		if err != nil {
			return nil, refuse(http.StatusUnauthorized, "unauthorized", "envelope header: %v", err)
		}
		if dsnProject != project {
			return nil, refuse(http.StatusForbidden, "forbidden", "the envelope header's DSN is for project %s, but it was sent to project %s", clipKey(dsnProject), project)
		}
		if r, e = in.authorize(r, key, project); e != nil {
			return nil, e
		}
	}
	now := time.Now()
	var dumps []model.Dump
	counts := map[string]int{}
	for n := 1; ; n++ {
		it, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(err)
		}
		counts[it.Type]++
		if !sentry.Keeps(it.Type) {
			continue
		}
		d, err := sentry.Convert(it.Payload, project, hdr.EventID, now)
		if err != nil {
			return nil, refuse(http.StatusBadRequest, "invalid", "envelope item %d: %v", n, err)
		}
		sentry.FixTimestamp(&d, hdr.SentAt, now)
		dumps = append(dumps, d)
	}
	if e := in.publish(r.Context(), r, project, dumps); e != nil {
		return nil, e
	}
	in.countItems(counts)
	ids := make([]string, 0, len(dumps))
	for _, d := range dumps {
		ids = append(ids, d.EventID)
	}
	if len(ids) == 0 && hdr.EventID != "" {
		ids = append(ids, hdr.EventID)
	}
	return ids, nil
}

func (in *dumpsIntake) handleStore(w http.ResponseWriter, r *http.Request) {
	cors(w, r)
	id, err := in.store(w, r)
	in.reply(w, receiverStore, err, id)
}

func (in *dumpsIntake) store(w http.ResponseWriter, r *http.Request) (string, *intakeError) {
	project := r.PathValue("project")
	if !validProject(project) {
		return "", refuse(http.StatusBadRequest, "invalid", "project id %q in the URL is not a number; the DSN's last path element is the project id", clipKey(project))
	}
	auth, found, err := sentry.RequestAuth(r)
	if err != nil {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "%v", err)
	}
	if !found {
		return "", refuse(http.StatusUnauthorized, "unauthorized", "missing authentication: send the DSN key in X-Sentry-Auth or the sentry_key query parameter")
	}
	r, e := in.authorize(r, auth.Key, project)
	if e != nil {
		return "", e
	}
	l := in.opts.Limits
	body, closeBody, e := decodeBody(w, r, "store request", l.StoreDecompressed, l.StoreCompressed, l.StoreDecompressed)
	if e != nil {
		return "", e
	}
	defer closeBody()
	data, err := io.ReadAll(body)
	if err != nil {
		return "", readError(err)
	}
	payload, err := sentry.StorePayload(data, l.StoreDecompressed)
	if err != nil {
		return "", readError(err)
	}
	now := time.Now()
	d, err := sentry.Convert(payload, project, "", now)
	if err != nil {
		return "", readError(err)
	}
	sentry.FixTimestamp(&d, "", now)
	if e := in.publish(r.Context(), r, project, []model.Dump{d}); e != nil {
		return "", e
	}
	in.countItems(map[string]int{"event": 1})
	return d.EventID, nil
}

// publish queues dumps of request r, once overload protection admitted
// them, returning only once the queue holds them durably.
func (in *dumpsIntake) publish(ctx context.Context, r *http.Request, project string, dumps []model.Dump) *intakeError {
	if len(dumps) == 0 {
		return nil
	}
	if e := in.limits.allow(ctx, "dumps", len(dumps)); e != nil {
		return &intakeError{code: e.code, reason: e.reason, detail: e.msg, retryAfter: e.retryAfterSeconds(), rateReason: "ingestion_rate"}
	}
	o := &origin{grade: requestGrade(r, 0, 0), arrived: time.Now()}
	counts, best := countByService(len(dumps), func(i int) (string, int) { return dumps[i].Service, dumps[i].Grade })
	release, refused := in.admission.admit(ctx, "dumps", o, best, counts)
	if refused != nil {
		return &intakeError{code: http.StatusTooManyRequests, reason: "overloaded", detail: refused.msg, retryAfter: refused.retryAfterSeconds()}
	}
	defer release()
	ctx = withGrade(ctx, o, best)
	recs := make([]queue.Record, len(dumps))
	for i := range dumps {
		v, err := dumps[i].EncodeJSON()
		if err != nil {
			return refuse(http.StatusBadRequest, "invalid", "event %s cannot be encoded: %v", dumps[i].EventID, err)
		}
		recs[i] = queue.Record{Key: project, Value: v}
	}
	err := queue.PublishBatch(ctx, in.producer, recs)
	switch {
	case err == nil:
		in.metrics.received.WithLabelValues("sentry").Add(float64(len(dumps)))
		return nil
	case errors.Is(err, queue.ErrFull):
		return refuse(http.StatusTooManyRequests, "queue_full", "the dumps queue is full; retry after the Retry-After delay")
	case errors.Is(err, queue.ErrTooLarge):
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "the event is larger than the dumps queue accepts: %v", err)
	default:
		in.logger.Warn("cannot queue dumps", "project", project, "events", len(dumps), "err", err)
		return refuse(http.StatusServiceUnavailable, "unavailable", "the dumps queue cannot take events right now; retry later")
	}
}

// knownItemTypes bound the type label of vigil_collector_sentry_items_total.
var knownItemTypes = map[string]bool{
	"event": true, "error": true, "transaction": true, "session": true, "sessions": true, "attachment": true,
	"client_report": true, "check_in": true, "log": true, "span": true, "profile": true, "profile_chunk": true,
	"replay_event": true, "replay_recording": true, "replay_video": true, "user_report": true, "feedback": true,
	"statsd": true, "metric_buckets": true, "trace_metric": true, "otel_log": true,
}

func (in *dumpsIntake) countItems(counts map[string]int) {
	for typ, n := range counts {
		outcome := "ignored"
		if sentry.Keeps(typ) {
			outcome = "queued"
		}
		if !knownItemTypes[typ] {
			typ = "other"
		}
		in.items.WithLabelValues(typ, outcome).Add(float64(n))
	}
}

// readError maps what reading and decoding a body failed with to an
// answer: 413 for a limit, 400 for the rest.
func readError(err error) *intakeError {
	var le *sentry.LimitError
	if errors.As(err, &le) {
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "%v", le)
	}
	var ee *sentry.EnvelopeError
	var ev *sentry.EventError
	if errors.As(err, &ee) || errors.As(err, &ev) {
		return refuse(http.StatusBadRequest, "invalid", "%v", err)
	}
	return refuse(http.StatusBadRequest, "invalid", "cannot read the body: %v", err)
}
