package collector

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/otlplogs"
)

const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// handleOTLPLogs serves OTLP/HTTP POST /v1/logs in protobuf or JSON, per the
// OTLP specification: a 200 with an ExportLogsServiceResponse in the
// request's encoding, or an error status with a google.rpc.Status body.
func (c *Collector) handleOTLPLogs(w http.ResponseWriter, r *http.Request) {
	const receiver = "otlp_http_logs"
	o := httpOrigin(w, r)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fail := func(code int, reason, msg string, n int) {
		c.httpMetrics.requests.Count(receiver, code)
		c.httpMetrics.rejected.WithLabelValues(receiver, reason).Add(float64(max(n, 1)))
		setRetryAfter(w, code)
		writeOTLPStatus(w, ct, code, msg)
	}
	if ct != contentTypeProtobuf && ct != contentTypeJSON {
		fail(http.StatusUnsupportedMediaType, "invalid", fmt.Sprintf("unsupported Content-Type %q; use %s or %s", ct, contentTypeProtobuf, contentTypeJSON), 1)
		return
	}
	data, err := readBody(r, w, c.opts.MaxBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body exceeds %d bytes (--collector.http.max-body-bytes)", c.opts.MaxBodyBytes), 1)
		return
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error(), 1)
		return
	}
	decode := otlplogs.Unmarshal
	if ct == contentTypeJSON {
		decode = otlplogs.UnmarshalJSON
	}
	recs, err := decode(nil, data)
	if err == nil {
		err = validateOTLP(recs)
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error(), len(recs))
		return
	}
	resp := plogotlp.NewExportResponse()
	limited := 0
	if len(recs) > 0 {
		code, msg, reason, lim := c.accept(r.Context(), o, recs, o.arrived.UnixNano())
		if code != http.StatusOK {
			fail(code, reason, msg, len(recs))
			return
		}
		limited = c.partialSuccess(receiver, resp, lim, msg)
	}
	c.httpMetrics.received.WithLabelValues(receiver).Add(float64(len(recs) - limited))
	c.httpMetrics.requests.Count(receiver, http.StatusOK)
	writeOTLPResponse(w, ct, resp)
}

// partialSuccess reports in resp the limited log records refused by the
// tenant's max_streams, as OTLP says a partial acceptance is answered: 200
// with partial_success (rejected_log_records and the message), which
// exporters do not retry. It returns limited.
func (c *Collector) partialSuccess(receiver string, resp plogotlp.ExportResponse, limited int, msg string) int {
	if limited > 0 {
		c.httpMetrics.rejected.WithLabelValues(receiver, "stream_limit").Add(float64(limited))
		ps := resp.PartialSuccess()
		ps.SetRejectedLogRecords(int64(limited))
		ps.SetErrorMessage(msg)
	}
	return limited
}

// otlpResponse is an OTLP Export…ServiceResponse.
type otlpResponse interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// writeOTLPResponse answers 200 with resp in the request's encoding ct.
func writeOTLPResponse(w http.ResponseWriter, ct string, resp otlpResponse) {
	var body []byte
	if ct == contentTypeJSON {
		body, _ = resp.MarshalJSON()
	} else {
		body, _ = resp.MarshalProto()
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeOTLPStatus writes a google.rpc.Status with the gRPC code matching the
// HTTP status, in protobuf or JSON.
func writeOTLPStatus(w http.ResponseWriter, ct string, httpCode int, msg string) {
	code := int32(3) // INVALID_ARGUMENT
	switch httpCode {
	case http.StatusTooManyRequests:
		code = 8 // RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		code = 14 // UNAVAILABLE
	}
	if ct == contentTypeProtobuf {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(code))
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, msg)
		w.Header().Set("Content-Type", contentTypeProtobuf)
		w.WriteHeader(httpCode)
		_, _ = w.Write(b) // #nosec G705 -- a protobuf Status, sent as application/x-protobuf, not HTML
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(httpCode)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}
