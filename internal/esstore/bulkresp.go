package esstore

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/valyala/fastjson"
)

// outcome is what Write does with one bulk item.
type outcome uint8

const (
	itemCreated   outcome = iota // 200/201: stored
	itemDuplicate                // 409 on create: the id is already stored
	itemRetry                    // 429, 5xx: resend this item later
	itemRejected                 // 400, 413: the document itself is bad; dead-letter it
	itemFailed                   // anything else (401, 403, 404, closed index…): a setup problem, fail the Write
)

func (o outcome) String() string {
	return [...]string{"created", "duplicate", "retry", "rejected", "failed"}[o]
}

// itemResult is one item of a bulk response.
type itemResult struct {
	status  int
	outcome outcome
	errType string // Elasticsearch's error type, e.g. document_parsing_exception
	reason  string // type, reason and causes, for a person
}

// bulkFilterPath keeps only what Write reads of a bulk response.
const bulkFilterPath = "errors,items.*.status,items.*.error"

var parsers fastjson.ParserPool

// allCreated is how a bulk response filtered by bulkFilterPath starts when
// no item failed (a 409 counts as a failure there).
var allCreated = []byte(`{"errors":false,`)

// parseBulkResponse parses the response to a bulk request of n items.
// Items come back in request order.
func parseBulkResponse(body []byte, n int) ([]itemResult, error) {
	// the common case: skip parsing the items, after checking they are all there
	if bytes.HasPrefix(body, allCreated) && bytes.HasSuffix(bytes.TrimSpace(body), []byte("]}")) &&
		bytes.Count(body, []byte(`"status":`)) == n {
		out := make([]itemResult, n)
		for i := range out {
			out[i] = itemResult{status: http.StatusCreated, outcome: itemCreated}
		}
		return out, nil
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse bulk response: %w", err)
	}
	items := v.GetArray("items")
	if len(items) != n {
		return nil, fmt.Errorf("bulk response has %d items for %d documents: %s", len(items), n, snippet(body))
	}
	out := make([]itemResult, n)
	for i, it := range items {
		o, err := it.Object()
		if err != nil {
			return nil, fmt.Errorf("bulk response item %d: %w", i, err)
		}
		var action *fastjson.Value
		o.Visit(func(_ []byte, v *fastjson.Value) {
			if action == nil {
				action = v
			}
		})
		if action == nil {
			return nil, fmt.Errorf("bulk response item %d is empty", i)
		}
		r := itemResult{status: action.GetInt("status")}
		if e := action.Get("error"); e != nil {
			r.errType, r.reason = describeError(e)
		}
		r.outcome = classify(r.status, r.errType)
		out[i] = r
	}
	return out, nil
}

// classify decides what to do with an item of the given status.
func classify(status int, errType string) outcome {
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
		return itemCreated
	case status == http.StatusConflict:
		return itemDuplicate
	case status == http.StatusTooManyRequests || status >= 500:
		return itemRetry
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		switch errType {
		case "index_closed_exception", "cluster_block_exception", "invalid_index_name_exception":
			// about the index, not the document: dead-lettering would lose
			// every record until someone notices
			return itemFailed
		}
		return itemRejected
	}
	return itemFailed
}

// describeError renders an Elasticsearch error object with its causes:
// "document_parsing_exception: [1:102] failed to parse field [vigil.grade] …
// (caused by illegal_argument_exception: Value [1000] is out of range for a byte)".
func describeError(e *fastjson.Value) (typ, reason string) {
	if e.Type() == fastjson.TypeString {
		s, _ := e.StringBytes()
		return "error", string(s)
	}
	typ = string(e.GetStringBytes("type"))
	reason = typ + ": " + shorten(e.GetStringBytes("reason"))
	for c, depth := e.Get("caused_by"), 0; c != nil && depth < 4; c, depth = c.Get("caused_by"), depth+1 {
		reason += " (caused by " + string(c.GetStringBytes("type")) + ": " + shorten(c.GetStringBytes("reason")) + ")"
	}
	if typ == "" {
		typ = "unknown"
	}
	return typ, reason
}

// maxReason bounds each message of a reason: Elasticsearch quotes the
// offending value, which can be the whole (huge) field.
const maxReason = 400

func shorten(b []byte) string {
	if len(b) <= maxReason {
		return string(b)
	}
	cut := maxReason
	for cut > 0 && b[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return string(b[:cut]) + "…"
}

// errorReason extracts the error of a whole-request failure body.
func errorReason(body []byte) string {
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil || v.Get("error") == nil {
		return snippet(body)
	}
	_, r := describeError(v.Get("error"))
	return r
}
