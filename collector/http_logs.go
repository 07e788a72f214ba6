package collector

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/httpserver"
	"github.com/vigilhq/vigil/internal/logsjson"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// httpMetrics counts what the HTTP receivers accepted and rejected.
type httpMetrics struct {
	requests *httpserver.RequestMetrics
	received *prometheus.CounterVec // receiver
	rejected *prometheus.CounterVec // receiver, reason
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: httpserver.NewRequestMetrics(httpserver.RequestMetricsOpts{
			Subsystem: "collector", Label: "receiver", Name: "http_requests_total",
			Help: "Requests to the HTTP receivers, by receiver and status code.",
		}, reg),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "received_records_total",
			Help: "Log records accepted by a receiver (durably queued); for the OTLP metrics receivers, data points the metrics destination stored.",
		}, []string{"receiver"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil", Subsystem: "collector", Name: "rejected_records_total",
			Help: "Log records or requests (OTLP metrics: requests) refused, by receiver and reason (invalid, too_large, queue_full, unavailable).",
		}, []string{"receiver", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.rejected)
	}
	return m
}

// errBodyTooLarge is returned by readBody when a body, compressed or not,
// exceeds the limit.
var errBodyTooLarge = errors.New("body too large")

// readBody reads the request body, gunzipping it when Content-Encoding says
// so, and enforces limit on both the wire size and the decoded size. Each
// of also, "deflate" or "snappy", is one more Content-Encoding accepted:
// deflate is inflated, snappy is left to the caller's decoder.
func readBody(r *http.Request, w http.ResponseWriter, limit int64, also ...string) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	var rd io.Reader = body
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); {
	case enc == "" || enc == "identity":
	case enc == "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("cannot read gzip body: %w", err)
		}
		defer zr.Close()
		rd = zr
	case enc == "deflate" && slices.Contains(also, enc):
		fr := flate.NewReader(body)
		defer fr.Close()
		rd = fr
	case enc == "snappy" && slices.Contains(also, enc):
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q; use %s or none", enc, strings.Join(append([]string{"gzip"}, also...), ", "))
	}
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || int64(len(data)) > limit {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read body: %w", err)
	}
	return data, nil
}

type logsAPIResponse struct {
	Accepted int      `json:"accepted"`
	Error    string   `json:"error,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

var decoderPool = sync.Pool{New: func() any { return new(logsjson.Decoder) }}

// handleLogsAPI serves POST /api/v1/logs: NDJSON or a JSON array of records.
// A body with any invalid record is rejected whole with 400, each bad record
// named by line and field; nothing of it is queued, so the client can fix
// and resend it without creating duplicates.
func (c *Collector) handleLogsAPI(w http.ResponseWriter, r *http.Request) {
	const receiver = "logs_api"
	reply := func(code int, resp logsAPIResponse, reason string, n int) {
		c.httpMetrics.requests.Count(receiver, code)
		if reason != "" {
			c.httpMetrics.rejected.WithLabelValues(receiver, reason).Add(float64(max(n, 1)))
		}
		setRetryAfter(w, code)
		httpserver.WriteJSON(w, code, resp)
	}
	data, err := readBody(r, w, c.opts.MaxBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		reply(http.StatusRequestEntityTooLarge, logsAPIResponse{Error: fmt.Sprintf("request body exceeds %d bytes (--collector.http.max-body-bytes); split it", c.opts.MaxBodyBytes)}, "too_large", 1)
		return
	}
	if err != nil {
		reply(http.StatusBadRequest, logsAPIResponse{Error: err.Error()}, "invalid", 1)
		return
	}
	o := httpOrigin(w, r)
	now := o.arrived.UnixNano()
	d := decoderPool.Get().(*logsjson.Decoder)
	recs, errs, bad := d.Decode(nil, data, now)
	decoderPool.Put(d)
	if bad > 0 {
		resp := logsAPIResponse{Error: fmt.Sprintf("%d of %d records are invalid; nothing was accepted", bad, bad+len(recs))}
		for _, e := range errs {
			resp.Errors = append(resp.Errors, e.Error())
		}
		if bad > len(errs) {
			resp.Errors = append(resp.Errors, fmt.Sprintf("... and %d more", bad-len(errs)))
		}
		reply(http.StatusBadRequest, resp, "invalid", bad+len(recs))
		return
	}
	if len(recs) == 0 {
		reply(http.StatusBadRequest, logsAPIResponse{Error: "request body has no records; send NDJSON or a JSON array of {\"message\": ...} objects"}, "invalid", 1)
		return
	}
	n := len(recs)
	code, msg, reason, limited := c.accept(r.Context(), o, recs, now)
	if code != http.StatusOK {
		reply(code, logsAPIResponse{Error: msg}, reason, n)
		return
	}
	c.httpMetrics.received.WithLabelValues(receiver).Add(float64(n - limited))
	if limited > 0 {
		reply(http.StatusBadRequest, logsAPIResponse{Accepted: n - limited, Error: msg}, "stream_limit", limited)
		return
	}
	reply(http.StatusOK, logsAPIResponse{Accepted: n}, "", 0)
}

// accept passes recs through the tenant's limits and overload
// protection, assigns ids, defaults missing timestamps to the arrival time
// now, and queues recs, mapping failures to a status code. With code 200,
// limited lines of new streams past the tenant's max_streams were refused
// (msg says why) and the others queued.
func (c *Collector) accept(ctx context.Context, o *origin, recs []model.LogRecord, now int64) (code int, msg, reason string, limited int) {
	if e := c.limits.allow(ctx, "logs", len(recs)); e != nil {
		o.setRetryAfter(e)
		return e.code, e.msg, e.reason, 0
	}
	kept, lerr := c.limits.limitStreams(ctx, recs)
	if lerr != nil {
		limited, msg = len(recs)-len(kept), lerr.msg
	}
	code, m, reason := c.queue(ctx, o, kept, now)
	if code != http.StatusOK {
		return code, m, reason, 0
	}
	return code, msg, reason, limited
}

// queue is accept past the tenant's limits.
func (c *Collector) queue(ctx context.Context, o *origin, recs []model.LogRecord, now int64) (code int, msg, reason string) {
	if len(recs) == 0 {
		return http.StatusOK, "", ""
	}
	counts, best := countByService(len(recs), func(i int) (string, int) { return recs[i].Service, recs[i].Grade })
	release, refused := c.admission.admit(ctx, "logs", o, best, counts)
	if refused != nil {
		return http.StatusTooManyRequests, refused.msg, "overloaded"
	}
	defer release()
	ctx = withGrade(ctx, o, best)
	c.ids.assign(recs)
	for i := range recs {
		if recs[i].Timestamp == 0 {
			recs[i].Timestamp = now
		}
		if recs[i].ObservedTimestamp == 0 {
			recs[i].ObservedTimestamp = now
		}
	}
	err := c.pipeline.Send(ctx, recs)
	switch {
	case err == nil:
		return http.StatusOK, "", ""
	case errors.Is(err, queue.ErrFull):
		return http.StatusTooManyRequests, "the collector's queue is full; retry after the Retry-After delay", "queue_full"
	default:
		c.logger.Warn("cannot queue records", "records", len(recs), "err", err)
		return http.StatusServiceUnavailable, "the collector cannot queue records right now: " + err.Error(), "unavailable"
	}
}

// setRetryAfter asks the client of a 429 or 503 to wait a second, unless
// overload protection already said how long.
func setRetryAfter(w http.ResponseWriter, code int) {
	if (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
}

// validateOTLP applies the intake rules of the JSON API to OTLP records:
// bodies must be valid UTF-8, and a missing service gets the default.
func validateOTLP(recs []model.LogRecord) error {
	for i := range recs {
		r := &recs[i]
		if !utf8.ValidString(r.Message) {
			return fmt.Errorf("log record %d: body is not valid UTF-8", i+1)
		}
		if r.Service == "" {
			r.Service = logsjson.DefaultService
		}
		r.Source = "otlp"
	}
	return nil
}
