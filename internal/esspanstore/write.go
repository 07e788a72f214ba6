package esspanstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// item is one bulk "create" action with its document.
type item struct {
	what string // for error messages: "span <trace>/<span>" or "service doc"
	line []byte // action and document, newline-terminated
	svc  string // for a service document: its cache key
	span int    // for a span document: its index in Write's spans
	// update marks the update of an earlier child's parent service; its
	// failure leaves that child to the query-time join.
	update bool
}

// Write stores spans in the span index of their start day, and one
// document per new service/operation pair in that day's service index. It
// returns nil only when every document is durable (the bulk API answers
// after the translog is fsynced). Documents are written with bulk create
// and id traceID+spanID, so a span already stored (409) is skipped and
// redelivery never duplicates. Items answered 429 or 5xx, and requests that
// fail as a whole, are retried with exponential backoff. Spans refused
// permanently (a mapping or parse error, a document too large) are reported
// with a *storage.RejectedError, with Elasticsearch's reasons, once every
// other document is durable; any other item error fails Write.
func (s *Store) Write(ctx context.Context, spans []model.Span) error {
	if len(spans) == 0 {
		return nil
	}
	docs := make([]spanDoc, len(spans))
	for i := range spans {
		docs[i] = toDoc(&spans[i])
	}
	updates, resolved := s.resolveParents(ctx, spans, docs)
	items := make([]item, 0, len(spans)+len(updates)+1)
	seen := map[string]bool{}
	for i := range spans {
		sp, d := &spans[i], &docs[i]
		day := time.Unix(0, sp.StartTime).UTC()
		doc, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("cannot encode span %s/%s: %w", d.TraceID, d.SpanID, err)
		}
		items = append(items, item{what: "span " + d.TraceID + "/" + d.SpanID, line: action(s.spanIndex(day), d.TraceID+d.SpanID, doc), span: i})

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
		items = append(items, item{what: "service document " + sp.Service + "/" + sp.Name, line: action(sidx, sid, sdoc), svc: key, span: -1})
	}
	items = append(items, updates...)
	var rejected []storage.Rejection
	for start := 0; start < len(items); start += bulkMaxDocs {
		var err error
		if rejected, err = s.send(ctx, items[start:min(start+bulkMaxDocs, len(items))], rejected); err != nil {
			return err
		}
	}
	s.parents.remember(spans)
	s.parents.resolved(resolved)
	if len(rejected) > 0 {
		slices.SortFunc(rejected, func(a, b storage.Rejection) int { return cmp.Compare(a.Index, b.Index) })
		return &storage.RejectedError{Items: rejected}
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

// send writes items, resending only those that failed transiently, and
// appends the spans Elasticsearch refused permanently to rejected.
func (s *Store) send(ctx context.Context, items []item, rejected []storage.Rejection) ([]storage.Rejection, error) {
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	body := func(idx []int) []byte {
		var b []byte
		for _, i := range idx {
			b = append(b, items[i].line...)
		}
		return b
	}
	err := s.bulk.Send(ctx, idx, body, func(i int, r es.ItemResult) error {
		it := &items[i]
		switch {
		case it.update:
			if r.Outcome != es.Created && r.Outcome != es.Duplicate {
				s.m.parentUpdateFailures.Inc()
			}
		case r.Outcome == es.Rejected && it.span >= 0:
			s.m.spansRejected.Inc()
			rejected = append(rejected, storage.Rejection{Index: it.span, Reason: fmt.Sprintf("status %d: %s", r.Status, r.Reason)})
		case r.Outcome != es.Created && r.Outcome != es.Duplicate:
			//lint:ignore ST1005 it begins with the name Elasticsearch
			return fmt.Errorf("Elasticsearch refused %s: status %d: %s", it.what, r.Status, r.Reason)
		case it.svc != "":
			s.mu.Lock()
			if len(s.services) > 100000 {
				clear(s.services)
			}
			s.services[it.svc] = struct{}{}
			s.mu.Unlock()
		case r.Outcome == es.Duplicate:
			s.m.spansDuplicate.Inc()
		default:
			s.m.spansIndexed.Inc()
		}
		return nil
	})
	return rejected, err
}
