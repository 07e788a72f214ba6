package esspanstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// item is one bulk "create" action with its document.
type item struct {
	what string // for error messages: "span <trace>/<span>" or "service doc"
	line []byte // action and document, newline-terminated
	svc  string // for a service document: its cache key
}

// Write stores spans in the span index of their start day, and one
// document per new service/operation pair in that day's service index. It
// returns nil only when every document is durable (the bulk API answers
// after the translog is fsynced). Documents are written with bulk create
// and id traceID+spanID, so a span already stored (409) is skipped and
// redelivery never duplicates. Items answered 429 or 5xx, and requests that
// fail as a whole, are retried with exponential backoff; any other item
// error fails Write with Elasticsearch's reason.
func (s *Store) Write(ctx context.Context, spans []model.Span) error {
	if len(spans) == 0 {
		return nil
	}
	items := make([]item, 0, len(spans)+1)
	seen := map[string]bool{}
	for i := range spans {
		sp := &spans[i]
		d := toDoc(sp)
		day := time.Unix(0, sp.StartTime).UTC()
		doc, err := json.Marshal(&d)
		if err != nil {
			return fmt.Errorf("cannot encode span %s/%s: %w", d.TraceID, d.SpanID, err)
		}
		items = append(items, item{what: "span " + d.TraceID + "/" + d.SpanID, line: action(s.spanIndex(day), d.TraceID+d.SpanID, doc)})

		sidx, sid := s.serviceIndex(day), serviceDocID(sp.Service, sp.Name)
		key := sidx + "/" + sid
		s.mu.Lock()
		_, known := s.services[key]
		s.mu.Unlock()
		if known || seen[key] {
			continue
		}
		seen[key] = true
		sdoc, _ := json.Marshal(serviceDoc{ServiceName: sp.Service, OperationName: sp.Name})
		items = append(items, item{what: "service document " + sp.Service + "/" + sp.Name, line: action(sidx, sid, sdoc), svc: key})
	}
	for start := 0; start < len(items); start += bulkMaxDocs {
		if err := s.send(ctx, items[start:min(start+bulkMaxDocs, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

func action(index, id string, doc []byte) []byte {
	b := make([]byte, 0, len(doc)+len(index)+len(id)+40)
	b = append(b, `{"create":{"_index":`...)
	b = appendQuoted(b, index)
	b = append(b, `,"_id":`...)
	b = appendQuoted(b, id)
	b = append(b, "}}\n"...)
	b = append(b, doc...)
	return append(b, '\n')
}

func appendQuoted(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// send writes items, resending only those that failed transiently.
func (s *Store) send(ctx context.Context, items []item) error {
	pending := items
	var lastErr error
	for attempt := 1; ; attempt++ {
		var body []byte
		for _, it := range pending {
			body = append(body, it.line...)
		}
		status, resp, err := s.do(ctx, http.MethodPost, "/_bulk?filter_path=errors,items.*.status,items.*.error", body, "application/x-ndjson")
		var retry []item
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("cannot write %d spans to Elasticsearch: %w", len(pending), ctx.Err())
			}
			lastErr, retry = err, pending
		case status == http.StatusTooManyRequests || status >= 500:
			lastErr, retry = fmt.Errorf("bulk request: status %d: %s", status, snippet(resp)), pending
		case status != http.StatusOK:
			return fmt.Errorf("bulk request to %v: status %d: %s", s.opts.URLs, status, snippet(resp))
		default:
			results, err := parseBulk(resp, len(pending))
			if err != nil {
				lastErr, retry = err, pending
				break
			}
			for i, r := range results {
				it := pending[i]
				switch {
				case r.status == http.StatusOK || r.status == http.StatusCreated || r.status == http.StatusConflict:
					if it.svc != "" {
						s.mu.Lock()
						if len(s.services) > 100000 {
							clear(s.services)
						}
						s.services[it.svc] = struct{}{}
						s.mu.Unlock()
					} else if r.status == http.StatusConflict {
						s.m.spansDuplicate.Inc()
					} else {
						s.m.spansIndexed.Inc()
					}
				case r.status == http.StatusTooManyRequests || r.status >= 500:
					retry = append(retry, it)
					lastErr = fmt.Errorf("status %d: %s", r.status, r.reason)
				default:
					return fmt.Errorf("Elasticsearch refused %s: status %d: %s", it.what, r.status, r.reason)
				}
			}
			if len(retry) == 0 {
				return nil
			}
			s.m.itemRetries.Add(float64(len(retry)))
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("cannot write %d of %d documents to Elasticsearch after %d attempts: %w", len(retry), len(items), attempt, lastErr)
		}
		d := min(retryBase<<(attempt-1), retryMax)
		t := time.NewTimer(d/2 + rand.N(d/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cannot write %d documents to Elasticsearch: %w (last error: %v)", len(retry), ctx.Err(), lastErr)
		case <-t.C:
		}
		pending = retry
	}
}

type bulkResult struct {
	status int
	reason string
}

// parseBulk reads the per-item statuses of a bulk response of n items,
// which come back in request order.
func parseBulk(body []byte, n int) ([]bulkResult, error) {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil, fmt.Errorf("cannot parse bulk response: %w", err)
	}
	items := v.GetArray("items")
	if len(items) != n {
		return nil, fmt.Errorf("bulk response has %d items for %d documents: %s", len(items), n, snippet(body))
	}
	out := make([]bulkResult, n)
	for i, it := range items {
		o, err := it.Object()
		if err != nil || o.Len() != 1 {
			return nil, errors.New("bulk response item is not a one-key object")
		}
		o.Visit(func(_ []byte, a *fastjson.Value) {
			out[i].status = a.GetInt("status")
			if e := a.Get("error"); e != nil {
				out[i].reason = string(e.GetStringBytes("type")) + ": " + string(e.GetStringBytes("reason"))
				if c := e.Get("caused_by"); c != nil {
					out[i].reason += " (caused by " + string(c.GetStringBytes("type")) + ": " + string(c.GetStringBytes("reason")) + ")"
				}
			}
		})
	}
	return out, nil
}
