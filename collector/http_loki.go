package collector

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sync"

	"github.com/vigilhq/vigil/internal/lokipush"
)

var lokiDecoderPool = sync.Pool{New: func() any { return new(lokipush.Decoder) }}

// handleLokiPush serves Loki's POST /loki/api/v1/push for the log shippers
// that speak it (Promtail, Alloy, Fluent Bit, Vector, the Docker driver):
// a snappy-compressed protobuf PushRequest, or JSON with Content-Type
// application/json, optionally gzip- or deflate-encoded. Like Loki it
// answers 204 once the lines are stored (here: durably queued), and
// errors as plain text: 400 naming the problem, 413 over the body limit,
// 422 without streams, 429 when the queue is full. As in Loki, the valid
// entries of a request with some invalid ones (bad stream labels, lines
// over --collector.loki.max-line-bytes) are kept and the answer is 400
// naming the invalid ones; a client must not resend them. Lines of new
// streams past the tenant's max_streams are refused the same way (400;
// Loki answers 429, which makes shippers resend the accepted lines).
func (c *Collector) handleLokiPush(w http.ResponseWriter, r *http.Request) {
	const receiver = "loki_push"
	fail := func(code int, reason, msg string, n int) {
		c.httpMetrics.requests.Count(receiver, code)
		c.httpMetrics.rejected.WithLabelValues(receiver, reason).Add(float64(max(n, 1)))
		setRetryAfter(w, code)
		http.Error(w, msg, code)
	}
	o := httpOrigin(w, r)
	format := lokipush.Protobuf
	if v := r.Header.Get("Content-Type"); v != "" {
		ct, _, err := mime.ParseMediaType(v)
		if err != nil {
			fail(http.StatusBadRequest, "invalid", fmt.Sprintf("Content-Type %q: %v; use application/x-protobuf or application/json", v, err), 1)
			return
		}
		if ct == contentTypeJSON {
			format = lokipush.JSON
		}
	}
	data, err := readBody(r, w, c.opts.MaxBodyBytes, "deflate", "snappy")
	if errors.Is(err, errBodyTooLarge) {
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body too large: message size too large than max (limit %d bytes, --collector.http.max-body-bytes)", c.opts.MaxBodyBytes), 1)
		return
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid", err.Error(), 1)
		return
	}

	now := o.arrived.UnixNano()
	d := lokiDecoderPool.Get().(*lokipush.Decoder)
	d.MaxDecodedBytes, d.MaxLineBytes = int(min(c.opts.MaxBodyBytes, 1<<31-1)), c.opts.LokiMaxLineBytes
	res, err := d.Decode(nil, data, format, now)
	lokiDecoderPool.Put(d)
	var tooLarge *lokipush.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		fail(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body too large: %v (--collector.http.max-body-bytes)", err), 1)
		return
	case errors.Is(err, lokipush.ErrNoStreams):
		fail(http.StatusUnprocessableEntity, "invalid", err.Error(), 1)
		return
	case err != nil:
		fail(http.StatusBadRequest, "invalid", err.Error(), 1)
		return
	}

	limited, limitMsg := 0, ""
	if n := len(res.Records); n > 0 {
		code, msg, reason, lim := c.accept(r.Context(), o, res.Records, now)
		if code != http.StatusOK {
			if res.Invalid > 0 {
				c.httpMetrics.rejected.WithLabelValues(receiver, "invalid").Add(float64(res.Invalid))
			}
			fail(code, reason, msg, n)
			return
		}
		c.httpMetrics.received.WithLabelValues(receiver).Add(float64(n - lim))
		limited, limitMsg = lim, msg
	}
	switch {
	case res.Invalid > 0 && limited > 0:
		c.httpMetrics.rejected.WithLabelValues(receiver, "stream_limit").Add(float64(limited))
		fail(http.StatusBadRequest, "invalid", res.Err.Error()+"; "+limitMsg, res.Invalid)
		return
	case res.Invalid > 0:
		fail(http.StatusBadRequest, "invalid", res.Err.Error(), res.Invalid)
		return
	case limited > 0:
		fail(http.StatusBadRequest, "stream_limit", limitMsg, limited)
		return
	}
	c.httpMetrics.requests.Count(receiver, http.StatusNoContent)
	w.WriteHeader(http.StatusNoContent)
}
