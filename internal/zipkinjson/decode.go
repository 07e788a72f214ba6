// Package zipkinjson decodes Zipkin v2 JSON, the body of
// `POST /api/v2/spans`: a JSON array of spans as Zipkin tracers (Brave,
// zipkin-go, zipkin-js…) report them. The mapping to Vigil's spans follows
// the OpenTelemetry Collector's Zipkin receiver and is documented in
// docs/format/spans.md.
package zipkinjson

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// DefaultService is the service of spans whose localEndpoint names none.
const DefaultService = "unknown_service"

// SpanError is the problem with one span of a request, or with the body as
// a whole when Index is -1.
type SpanError struct {
	Index int    // 0-based index of the span in the JSON array, or -1
	Field string // JSON path of the bad field, e.g. "localEndpoint.ipv4"; empty when the span as a whole is bad
	Msg   string
}

func (e *SpanError) Error() string {
	switch {
	case e.Index < 0:
		return "body: " + e.Msg
	case e.Field == "":
		return fmt.Sprintf("span %d: %s", e.Index, e.Msg)
	}
	return fmt.Sprintf("span %d: field %q: %s", e.Index, e.Field, e.Msg)
}

// Decoder decodes request bodies. It is not safe for concurrent use; keep
// one per goroutine or in a sync.Pool.
type Decoder struct {
	p fastjson.Parser
	// MaxErrors bounds the errors collected per body; 0 means 20.
	MaxErrors int
}

// Decode appends the spans of body to dst. It returns every bad span's
// error (up to MaxErrors) together with the total number of bad spans;
// callers reject the whole body when bad > 0, and then dst's new spans must
// not be used. Strings of the returned spans do not alias body.
func (d *Decoder) Decode(dst []model.Span, body []byte) (spans []model.Span, errs []*SpanError, bad int) {
	maxErrs := d.MaxErrors
	if maxErrs <= 0 {
		maxErrs = 20
	}
	if !utf8.Valid(body) {
		return dst, []*SpanError{{Index: -1, Msg: "not valid UTF-8"}}, 1
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return dst, []*SpanError{{Index: -1, Msg: "empty; want a JSON array of spans"}}, 1
	}
	v, err := d.p.ParseBytes(body)
	if err != nil {
		return dst, []*SpanError{{Index: -1, Msg: "invalid JSON: " + err.Error()}}, 1
	}
	if v.Type() != fastjson.TypeArray {
		return dst, []*SpanError{{Index: -1, Msg: "want a JSON array of spans, got " + v.Type().String()}}, 1
	}
	items, _ := v.Array()
	if n := len(dst) + len(items); cap(dst) < n {
		grown := make([]model.Span, len(dst), n)
		copy(grown, dst)
		dst = grown
	}
	for i, item := range items {
		dst = append(dst, model.Span{})
		if e := decodeSpan(&dst[len(dst)-1], item); e != nil {
			dst = dst[:len(dst)-1]
			e.Index = i
			bad++
			if len(errs) < maxErrs {
				errs = append(errs, e)
			}
		}
	}
	return dst, errs, bad
}
