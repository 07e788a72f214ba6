package federation

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are Vigil's own, beside those of Prometheus' libraries
// (prometheus_tsdb_*, prometheus_target_*, prometheus_remote_storage_*,
// prometheus_rule_*, prometheus_notifications_*).
type metrics struct {
	rejected    *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	federateErr prometheus.Counter

	pushRefused        *prometheus.CounterVec // endpoint, limit
	pushRefusedSamples *prometheus.CounterVec // endpoint, limit
	seriesRefused      *prometheus.CounterVec // limit
	// tenantSeriesRefused counts the series a tenant's max_series refused.
	tenantSeriesRefused *prometheus.CounterVec // tenant
	// tenantRetentionErrors counts per-tenant retention passes that failed.
	tenantRetentionErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_rejected_requests_total",
			Help: "Requests to the federation's HTTP API answered with a 4xx, by endpoint and status code: malformed remote-write bodies, queries, match[] selectors.",
		}, []string{"endpoint", "code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_config_reloads_total",
			Help: "Reloads of --federation.config, by result (success, failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_federation_config_last_reload_successful",
			Help: "1 when the last reload of --federation.config succeeded.",
		}),
		federateErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_federation_federate_errors_total",
			Help: "Answers of /federate that failed while reading the TSDB or writing the response.",
		}),
		pushRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_push_refused_total",
			Help: "Pushes (remote write, OTLP) refused whole or in part by a limit, by endpoint and limit: max-inflight-pushes (429), max-push-bytes, max-push-decoded-bytes, max-push-samples (413), max-series, max-series-per-service, max_series (a tenant's; partly accepted).",
		}, []string{"endpoint", "limit"}),
		pushRefusedSamples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_push_refused_samples_total",
			Help: "Samples of pushed new series dropped by a series limit (max-series, max-series-per-service, a tenant's max_series), by endpoint and limit; the other samples of those pushes were stored.",
		}, []string{"endpoint", "limit"}),
		seriesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_series_refused_total",
			Help: "Creations of a series refused by a series limit, from any source (pushes, scrapes, rules), by limit.",
		}, []string{"limit"}),
		tenantSeriesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_federation_tenant_series_refused_total",
			Help: "Creations of a series refused because its tenant holds its max_series (--auth.config) active series, by tenant.",
		}, []string{"tenant"}),
		tenantRetentionErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_federation_tenant_retention_errors_total",
			Help: "Passes of the per-tenant retention (tenants' retention in --auth.config) that failed to delete or compact away old samples; the next pass retries.",
		}),
	}
	m.lastReload.Set(1)
	reg.MustRegister(m.rejected, m.reloads, m.lastReload, m.federateErr, m.pushRefused, m.pushRefusedSamples, m.seriesRefused, m.tenantSeriesRefused, m.tenantRetentionErrors)
	return m
}

func (m *metrics) reload(err error) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		m.lastReload.Set(0)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReload.Set(1)
}

// counted counts the 4xx answers of h under endpoint.
func (m *metrics) counted(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		if sw.code >= 400 && sw.code < 500 {
			m.rejected.WithLabelValues(endpoint, strconv.Itoa(sw.code)).Inc()
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
