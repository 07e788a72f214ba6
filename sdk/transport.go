package sdk

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPTransport instruments outgoing requests made through base
// (http.DefaultTransport when nil): each is counted in the client golden
// metrics by peer (the URL's host:port), method and status code ("error"
// when no response came), runs in a client span, and carries the trace to
// the callee as traceparent and uber-trace-id headers. The span and the
// duration end when the response headers arrived.
func HTTPTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := current.Load()
	if s == nil {
		return t.base.RoundTrip(req)
	}
	start := time.Now()
	s.m.clientInflight.Inc()
	var span trace.Span
	if s.tracer != nil {
		ctx, sp := s.tracer.Start(req.Context(), req.Method, clientSpan...)
		span = sp
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("http.request.method", req.Method),
				attribute.String("server.address", req.URL.Host),
				attribute.String("url.full", redactedURL(req)),
			)
		}
		// A RoundTripper must not change the caller's request.
		req = req.Clone(ctx)
		s.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := t.base.RoundTrip(req)
	s.m.clientInflight.Dec()
	code := "error"
	if err == nil {
		code = codeLabel(resp.StatusCode)
	}
	peer, method := req.URL.Host, methodLabel(req.Method)
	s.m.clientRequests.WithLabelValues(peer, method, code).Inc()
	s.m.clientDuration.WithLabelValues(peer, method, code).Observe(time.Since(start).Seconds())
	if span != nil && span.IsRecording() {
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		default:
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 400 {
				span.SetStatus(codes.Error, "")
			}
		}
		span.End()
	}
	return resp, err
}

// redactedURL is the request URL without its user info and query, which
// may hold secrets.
func redactedURL(req *http.Request) string {
	u := *req.URL
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	return u.String()
}
