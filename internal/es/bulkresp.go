package es

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/valyala/fastjson"
)

// Outcome is what a writer does with one bulk item.
type Outcome uint8

const (
	Created   Outcome = iota // 200/201: stored
	Duplicate                // 409 on create: the id is already stored
	Retry                    // 429, 5xx: resend this item later
	Rejected                 // 400, 413: the document itself is bad; dead-letter it
	Failed                   // anything else (401, 403, 404, closed index…): a setup problem, fail the write
)

func (o Outcome) String() string {
	return [...]string{"created", "duplicate", "retry", "rejected", "failed"}[o]
}

// ItemResult is one item of a bulk response.
type ItemResult struct {
	Status  int
	Outcome Outcome
	ErrType string // Elasticsearch's error type, e.g. document_parsing_exception
	Reason  string // type, reason and causes, for a person
}

// bulkFilterPath keeps only what the writer reads of a bulk response.
const bulkFilterPath = "errors,items.*.status,items.*.error"

var parsers fastjson.ParserPool

// allCreated is how a bulk response filtered by bulkFilterPath starts when
// no item failed (a 409 counts as a failure there).
var allCreated = []byte(`{"errors":false,`)

// parseBulkResponse parses the response to a bulk request of n items.
// Items come back in request order.
func parseBulkResponse(body []byte, n int) ([]ItemResult, error) {
	// the common case: skip parsing the items, after checking they are all there
	if bytes.HasPrefix(body, allCreated) && bytes.HasSuffix(bytes.TrimSpace(body), []byte("]}")) &&
		bytes.Count(body, []byte(`"status":`)) == n {
		out := make([]ItemResult, n)
		for i := range out {
			out[i] = ItemResult{Status: http.StatusCreated, Outcome: Created}
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
		return nil, fmt.Errorf("bulk response has %d items for %d documents: %s", len(items), n, Snippet(body))
	}
	out := make([]ItemResult, n)
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
		r := ItemResult{Status: action.GetInt("status")}
		if e := action.Get("error"); e != nil {
			r.ErrType, r.Reason = describeError(e)
		}
		r.Outcome = classify(r.Status, r.ErrType)
		out[i] = r
	}
	return out, nil
}

// classify decides what to do with an item of the given status.
func classify(status int, errType string) Outcome {
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
		return Created
	case status == http.StatusConflict:
		return Duplicate
	case status == http.StatusTooManyRequests || status >= 500:
		return Retry
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		switch errType {
		case "index_closed_exception", "cluster_block_exception", "invalid_index_name_exception":
			// about the index, not the document: dead-lettering would lose
			// every document until someone notices
			return Failed
		}
		return Rejected
	}
	return Failed
}
