package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/vigilhq/vigil/internal/auth"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MetricsDestination takes the OTLP metrics the collector receives on
// POST /v1/metrics and MetricsService/Export. ExportMetrics returns only
// once the destination stored the request: the collector acknowledges the
// client then, and not before. An error wrapping *MetricsRefusal with a 4xx
// Code is the client's fault (answered 400 / INVALID_ARGUMENT, not retried);
// any other error is answered 503 / UNAVAILABLE, which OTLP clients retry.
type MetricsDestination interface {
	ExportMetrics(ctx context.Context, req pmetricotlp.ExportRequest) error
}

// MetricsRefusal is a destination's answer other than success: its HTTP
// status and message.
type MetricsRefusal struct {
	Code int
	Msg  string
}

func (e *MetricsRefusal) Error() string {
	return fmt.Sprintf("metrics destination answered %d: %s", e.Code, e.Msg)
}

// MetricsPartial is a destination's success that refused part of the
// request (OTLP's partial_success, e.g. the federation's series budget):
// the rest was stored. The collector answers it to the client as such.
type MetricsPartial struct {
	Rejected int64
	Msg      string
}

func (e *MetricsPartial) Error() string {
	return fmt.Sprintf("metrics destination refused %d data points: %s", e.Rejected, e.Msg)
}

// maxRefusalBytes bounds the part of a destination's error body quoted back.
const maxRefusalBytes = 1 << 10

// maxAnswerBytes bounds the success answer read from a destination.
const maxAnswerBytes = 1 << 16

// MetricsHandler is a MetricsDestination serving each request to an
// http.Handler that takes OTLP/HTTP protobuf, such as the federation's
// /api/v1/otlp/v1/metrics, in-process: a 2xx is success.
func MetricsHandler(h http.Handler, path string) MetricsDestination {
	return metricsHandler{h: h, path: path}
}

type metricsHandler struct {
	h    http.Handler
	path string
}

func (m metricsHandler) ExportMetrics(ctx context.Context, req pmetricotlp.ExportRequest) error {
	body, err := req.MarshalProto()
	if err != nil {
		return fmt.Errorf("cannot encode the metrics: %w", err)
	}
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, m.path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentTypeProtobuf)
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return refusal(rec.Code, rec.Header().Get("Content-Type"), rec.Body)
}

// MetricsForwarder is a MetricsDestination posting each request, as
// OTLP/HTTP protobuf, to url (the federation's
// http://federation:9095/api/v1/otlp/v1/metrics) and waiting for its answer.
func MetricsForwarder(url string, client *http.Client) MetricsDestination {
	if client == nil {
		client = http.DefaultClient
	}
	return metricsForwarder{url: url, client: client}
}

type metricsForwarder struct {
	url    string
	client *http.Client
}

func (m metricsForwarder) ExportMetrics(ctx context.Context, req pmetricotlp.ExportRequest) error {
	body, err := req.MarshalProto()
	if err != nil {
		return fmt.Errorf("cannot encode the metrics: %w", err)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", contentTypeProtobuf)
	if id, ok := auth.FromContext(ctx); ok {
		// The collector authenticated the client: the destination, which
		// lists the collectors in its trusted_proxies, takes the tenant.
		r.Header.Set(auth.OrgIDHeader, id.Tenant)
	}
	resp, err := m.client.Do(r)
	if err != nil {
		return fmt.Errorf("cannot reach the metrics destination (--collector.metrics-url): %w", err)
	}
	defer resp.Body.Close()
	err = refusal(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	return err
}

// refusal is nil for a 2xx, a *MetricsPartial for a 2xx whose protobuf
// ExportMetricsServiceResponse has a partial_success, else a
// *MetricsRefusal quoting the body.
func refusal(code int, contentType string, body io.Reader) error {
	if code >= 200 && code < 300 {
		if ct, _, _ := mime.ParseMediaType(contentType); ct != contentTypeProtobuf {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(body, maxAnswerBytes))
		resp := pmetricotlp.NewExportResponse()
		if len(b) == 0 || resp.UnmarshalProto(b) != nil {
			return nil
		}
		if ps := resp.PartialSuccess(); ps.RejectedDataPoints() != 0 || ps.ErrorMessage() != "" {
			return &MetricsPartial{Rejected: ps.RejectedDataPoints(), Msg: ps.ErrorMessage()}
		}
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(body, maxRefusalBytes))
	return &MetricsRefusal{Code: code, Msg: strings.TrimSpace(string(b))}
}

// exportMetrics hands req to the destination and returns the HTTP status
// to answer, the message and the rejected-counter reason; a partial
// success is a 200 with the destination's *MetricsPartial in resp.
func (c *Collector) exportMetrics(ctx context.Context, req pmetricotlp.ExportRequest, resp pmetricotlp.ExportResponse) (int, string, string) {
	if req.Metrics().DataPointCount() == 0 {
		return http.StatusOK, "", ""
	}
	err := c.opts.Metrics.ExportMetrics(ctx, req)
	if err == nil {
		return http.StatusOK, "", ""
	}
	var part *MetricsPartial
	if errors.As(err, &part) {
		resp.PartialSuccess().SetRejectedDataPoints(part.Rejected)
		resp.PartialSuccess().SetErrorMessage(part.Msg)
		return http.StatusOK, "", ""
	}
	var ref *MetricsRefusal
	if errors.As(err, &ref) && (ref.Code == http.StatusUnauthorized || ref.Code == http.StatusForbidden) {
		// The destination does not trust this collector: its operator's
		// configuration, not the client's data, is at fault. The client
		// keeps its metrics and retries until it is fixed.
		c.logger.Warn("the metrics destination refused the collector: list the collector's address in its trusted_proxies (--auth.config)", "status", ref.Code, "err", ref.Msg)
		return http.StatusServiceUnavailable, fmt.Sprintf("metrics destination refused this collector (%d: %s); the collector's address must be in its trusted_proxies; retry", ref.Code, ref.Msg), "unavailable"
	}
	if errors.As(err, &ref) && ref.Code >= 400 && ref.Code < 500 && ref.Code != http.StatusTooManyRequests {
		return http.StatusBadRequest, "metrics refused: " + ref.Msg, "invalid"
	}
	c.logger.Warn("metrics destination failed; the client retries", "err", err)
	return http.StatusServiceUnavailable, "metrics destination unavailable, retry: " + err.Error(), "unavailable"
}

// handleOTLPMetrics serves OTLP/HTTP POST /v1/metrics in protobuf or JSON,
// answering success only once the metrics destination accepted the request.
func (c *Collector) handleOTLPMetrics(w http.ResponseWriter, r *http.Request) {
	const receiver = "otlp_http_metrics"
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fail := func(code int, reason, msg string) {
		c.httpMetrics.requests.Count(receiver, code)
		c.httpMetrics.rejected.WithLabelValues(receiver, reason).Inc()
		setRetryAfter(w, code)
		writeOTLPStatus(w, ct, code, msg)
	}
	if ct != contentTypeProtobuf && ct != contentTypeJSON {
		fail(http.StatusUnsupportedMediaType, "invalid", fmt.Sprintf("unsupported Content-Type %q; use %s or %s", ct, contentTypeProtobuf, contentTypeJSON))
		return
	}
	data, err := readBody(r, w, c.opts.MaxBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body exceeds %d bytes (--collector.http.max-body-bytes)", c.opts.MaxBodyBytes))
		return
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error())
		return
	}
	req := pmetricotlp.NewExportRequest()
	if ct == contentTypeJSON {
		err = req.UnmarshalJSON(data)
	} else {
		err = req.UnmarshalProto(data)
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", "cannot decode the OTLP metrics request: "+err.Error())
		return
	}
	resp := pmetricotlp.NewExportResponse()
	if code, msg, reason := c.exportMetrics(r.Context(), req, resp); code != http.StatusOK {
		fail(code, reason, msg)
		return
	}
	c.countPartial(receiver, req, resp)
	c.httpMetrics.requests.Count(receiver, http.StatusOK)
	writeOTLPResponse(w, ct, resp)
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	c *Collector
}

func (g *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	const receiver = "otlp_grpc_metrics"
	resp := pmetricotlp.NewExportResponse()
	if code, msg, reason := g.c.exportMetrics(ctx, req, resp); code != http.StatusOK {
		g.c.httpMetrics.rejected.WithLabelValues(receiver, reason).Inc()
		c := codes.InvalidArgument
		if code == http.StatusServiceUnavailable {
			c = codes.Unavailable
		}
		return pmetricotlp.NewExportResponse(), status.Error(c, msg)
	}
	g.c.countPartial(receiver, req, resp)
	return resp, nil
}

// countPartial counts the data points of an accepted request, those the
// destination refused as rejected (reason "limit").
func (c *Collector) countPartial(receiver string, req pmetricotlp.ExportRequest, resp pmetricotlp.ExportResponse) {
	n, rej := int64(req.Metrics().DataPointCount()), resp.PartialSuccess().RejectedDataPoints()
	if rej > 0 {
		c.httpMetrics.rejected.WithLabelValues(receiver, "limit").Add(float64(rej))
	}
	c.httpMetrics.received.WithLabelValues(receiver).Add(float64(max(0, n-rej)))
}
