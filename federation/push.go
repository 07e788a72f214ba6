package federation

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/vigilhq/vigil/internal/auth"
)

// pushGuard protects the push endpoints (remote write in, OTLP in) in
// front of Prometheus' own receivers: it bounds the pushes served at once,
// the body's size as sent and decompressed, and the samples of one push,
// and it turns the series a limit refuses into a partial answer.
//
// A push that passes a size or sample limit is refused whole, nothing
// stored: 413. A push whose new series pass a series limit is partly
// accepted: the samples of the series that exist or fit are stored, the
// others are dropped, and the answer says how many and which limit —
// remote write: 400 (as Prometheus' remote write 2.0 receiver does for
// a partly written request, and Mimir for its series limits; a retry
// would be refused again until series go stale), OTLP: 200 with
// partial_success (the OTLP specification's answer), so neither is retried.
type pushGuard struct {
	l       Limits
	slots   chan struct{} // nil: no bound
	inner   storage.AppendableV2
	metrics *metrics
	tenants *tenancy // nil: every push is the default tenant's
}

func newPushGuard(l Limits, inner storage.AppendableV2, m *metrics) *pushGuard {
	g := &pushGuard{l: l, inner: inner, metrics: m}
	if l.MaxInflightPushes > 0 {
		g.slots = make(chan struct{}, l.MaxInflightPushes)
	}
	return g
}

// pushLedger follows one push through the appender; a push appends from
// one goroutine.
type pushLedger struct {
	tenant  string // whose series the push writes: TenantLabel is set to it
	samples int
	over    bool // past MaxPushSamples: rolled back
	dropped int  // samples of series refused by a series limit
	first   *SeriesLimitError
}

type ledgerKey struct{}

// errPushSamples rolls back a push past MaxPushSamples.
var errPushSamples = errors.New("push has too many samples")

// AppenderV2 appends through the ledger of the push in ctx; without one
// (not a push) it is the inner appender.
func (g *pushGuard) AppenderV2(ctx context.Context) storage.AppenderV2 {
	app := g.inner.AppenderV2(ctx)
	lg, _ := ctx.Value(ledgerKey{}).(*pushLedger)
	if lg == nil {
		return app
	}
	return &pushAppender{app: app, lg: lg, max: g.l.MaxPushSamples}
}

type pushAppender struct {
	app storage.AppenderV2
	lg  *pushLedger
	max int
}

var _ storage.ExemplarAppenderV2 = (*pushAppender)(nil)

func (a *pushAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if a.lg.over {
		return 0, nil
	}
	if a.lg.samples++; a.max > 0 && a.lg.samples > a.max {
		a.lg.over = true
		return 0, nil
	}
	r, err := a.app.Append(ref, withTenant(ls, a.lg.tenant), st, t, v, h, fh, opts)
	var sl *SeriesLimitError
	if err != nil && errors.As(err, &sl) {
		a.lg.dropped++
		if a.lg.first == nil {
			a.lg.first = sl
		}
		return 0, nil
	}
	return r, err
}

func (a *pushAppender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	if ea, ok := a.app.(storage.ExemplarAppenderV2); ok && ref != 0 {
		return ea.AppendExemplars(ref, withTenant(ls, a.lg.tenant), es)
	}
	return ref, nil
}

func (a *pushAppender) Commit() error {
	if a.lg.over {
		return errors.Join(errPushSamples, a.app.Rollback())
	}
	return a.app.Commit()
}

func (a *pushAppender) Rollback() error { return a.app.Rollback() }

// Push endpoints, as named in vigil_federation_push_refused_total.
const (
	pushRemoteWrite = "write"
	pushOTLP        = "otlp/v1/metrics"
)

// wrap guards next, the receiver of endpoint.
func (g *pushGuard) wrap(endpoint string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.acquire(r.Context()) {
			w.Header().Set("Retry-After", "1")
			g.refuse(w, endpoint, limitMaxInflightPushes, http.StatusTooManyRequests,
				fmt.Sprintf("too many pushes at once: the limit is %d (--federation.limits.%s); retry later", g.l.MaxInflightPushes, limitMaxInflightPushes))
			return
		}
		defer g.release()
		body, limit, err := g.readBody(endpoint, w, r)
		if limit != "" {
			g.refuse(w, endpoint, limit, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		lg := &pushLedger{tenant: auth.Tenant(r.Context())}
		if lg.tenant != auth.DefaultTenant && g.tenants != nil {
			g.tenants.seen.Store(true) // before its first series exists
		}
		r = r.WithContext(context.WithValue(r.Context(), ledgerKey{}, lg))
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		switch {
		case lg.over:
			g.refuse(w, endpoint, limitMaxPushSamples, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("push has more than %d samples (--federation.limits.%s); nothing was stored, send smaller requests", g.l.MaxPushSamples, limitMaxPushSamples))
		case lg.dropped > 0 && rec.code < 300:
			g.partial(w, endpoint, r, rec, lg)
		default:
			rec.flush(w)
		}
	})
}

func (g *pushGuard) acquire(ctx context.Context) bool {
	if g.slots == nil {
		return true
	}
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(g.l.PushQueueWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (g *pushGuard) release() {
	if g.slots != nil {
		<-g.slots
	}
}

// readBody reads a push's body within MaxPushBytes and checks its
// decompressed size: remote write's snappy block states it, an OTLP gzip
// body is decompressed here (and handed on as identity). limit names the
// limit passed, if any.
func (g *pushGuard) readBody(endpoint string, w http.ResponseWriter, r *http.Request) (body []byte, limit string, err error) {
	maxSent, maxDecoded := g.l.MaxPushBytes, g.l.MaxPushDecodedBytes
	if maxSent <= 0 {
		maxSent = 1<<63 - 1
	}
	if maxDecoded <= 0 {
		maxDecoded = 1<<63 - 1
	}
	if r.ContentLength > maxSent {
		return nil, limitMaxPushBytes, g.tooLarge(limitMaxPushBytes, maxSent)
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxSent))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, limitMaxPushBytes, g.tooLarge(limitMaxPushBytes, maxSent)
	}
	if err != nil {
		return nil, "", fmt.Errorf("cannot read the body: %w", err)
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch {
	case endpoint == pushRemoteWrite && enc == "snappy":
		if n, err := snappy.DecodedLen(body); err == nil && int64(n) > maxDecoded {
			return nil, limitMaxPushDecodedBytes, g.tooLarge(limitMaxPushDecodedBytes, maxDecoded)
		}
	case endpoint == pushOTLP && enc == "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, "", fmt.Errorf("cannot read the gzip body: %w", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, maxDecoded+1))
		if err != nil {
			return nil, "", fmt.Errorf("cannot read the gzip body: %w", err)
		}
		if int64(len(body)) > maxDecoded {
			return nil, limitMaxPushDecodedBytes, g.tooLarge(limitMaxPushDecodedBytes, maxDecoded)
		}
		r.Header.Del("Content-Encoding")
	case int64(len(body)) > maxDecoded:
		return nil, limitMaxPushDecodedBytes, g.tooLarge(limitMaxPushDecodedBytes, maxDecoded)
	}
	return body, "", nil
}

func (g *pushGuard) tooLarge(limit string, n int64) error {
	what := "body"
	if limit == limitMaxPushDecodedBytes {
		what = "decompressed body"
	}
	return fmt.Errorf("push %s exceeds %d bytes (--federation.limits.%s); nothing was stored, send smaller requests", what, n, limit)
}

func (g *pushGuard) refuse(w http.ResponseWriter, endpoint, limit string, code int, msg string) {
	g.metrics.pushRefused.WithLabelValues(endpoint, limit).Inc()
	http.Error(w, msg, code)
}

// partial answers a push some of whose series a series limit refused.
func (g *pushGuard) partial(w http.ResponseWriter, endpoint string, r *http.Request, rec *bufferedResponse, lg *pushLedger) {
	g.metrics.pushRefused.WithLabelValues(endpoint, lg.first.Limit).Inc()
	g.metrics.pushRefusedSamples.WithLabelValues(endpoint, lg.first.Limit).Add(float64(lg.dropped))
	msg := fmt.Sprintf("%d samples of new series were refused: %v; the other samples were stored", lg.dropped, lg.first)
	if endpoint == pushRemoteWrite {
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		const written = "X-Prometheus-Remote-Write-Samples-Written"
		if n, err := strconv.Atoi(w.Header().Get(written)); err == nil {
			w.Header().Set(written, strconv.Itoa(max(0, n-lg.dropped)))
		}
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	resp := pmetricotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedDataPoints(int64(lg.dropped))
	resp.PartialSuccess().SetErrorMessage(msg)
	var b []byte
	var err error
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		b, err = resp.MarshalJSON()
	} else {
		ct = "application/x-protobuf"
		b, err = resp.MarshalProto()
	}
	if err != nil {
		http.Error(w, msg, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// bufferedResponse holds a receiver's answer (a status, headers and a
// short body) until the guard knows whether to send it.
type bufferedResponse struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}

// registerLimitMetrics adds the gauges of the series budget.
func registerLimitMetrics(reg prometheus.Registerer, b *seriesBudget) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_federation_active_series",
			Help: "Series in the TSDB's head as counted against --federation.limits.max-series.",
		}, func() float64 { return float64(b.total.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_federation_active_services",
			Help: "Services (values of --federation.limits.service-labels) holding series, each counted against --federation.limits.max-series-per-service.",
		}, func() float64 { return float64(b.services()) }),
		tenantSeriesCollector{b},
	)
}

// tenantSeriesCollector exposes the active series of each tenant, counted
// when tenants have series limits.
type tenantSeriesCollector struct{ b *seriesBudget }

var tenantSeriesDesc = prometheus.NewDesc("vigil_federation_tenant_active_series",
	"Series in the TSDB's head by tenant, as counted against each tenant's max_series (--auth.config); only with auth on.",
	[]string{"tenant"}, nil)

func (c tenantSeriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tenantSeriesDesc }

func (c tenantSeriesCollector) Collect(ch chan<- prometheus.Metric) {
	for t, n := range c.b.tenantSeries() {
		ch <- prometheus.MustNewConstMetric(tenantSeriesDesc, prometheus.GaugeValue, float64(n), t)
	}
}
