package esspanstore

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Dependencies are counted by Elasticsearch, not joined in Go, for spans
// whose parent's service is known when they are written: such a span
// carries it as vigil.parentService (a keyword), and the calls between
// services are a terms aggregation over (vigil.parentService,
// process.serviceName) however many spans the window holds. A span's
// parent is looked up in the batch, then among the spans this store wrote
// recently, then by id in Elasticsearch (a realtime multi-get); a span
// written before its parent waits in a bounded pending list, and the
// parent's write updates it. A span whose parent could not be resolved
// (its parent arrived after a restart, or never, or Jaeger wrote it) is
// joined at query time, as before. So the caches only make the answer
// cheaper; it is the same without them.

// Bounds of the parent-service caches.
const (
	recentSpans    = 1 << 18 // spans whose service is remembered, per generation
	pendingMax     = 1 << 16 // children waiting for their parent
	parentLookback = 24 * time.Hour
)

type spanKey struct {
	trace model.TraceID
	span  model.SpanID
}

// childRef is a stored span waiting for its parent's service.
type childRef struct{ index, id string }

// parents remembers the services of recent spans and the children written
// before their parent. It is safe for concurrent use.
type parents struct {
	mu        sync.Mutex
	cur, prev map[spanKey]string
	// Children by parent, in two generations: when the current one holds
	// pendingMax/2 children it becomes the old one and the old one is
	// dropped, so children whose parent never comes (an uninstrumented
	// caller, a parent sampled away) do not stop the resolution of new
	// ones; dropped children are joined at query time.
	pending, oldPending map[spanKey][]childRef
	npending            int
}

func newParents() *parents {
	return &parents{cur: map[spanKey]string{}, prev: map[spanKey]string{},
		pending: map[spanKey][]childRef{}, oldPending: map[spanKey][]childRef{}}
}

func (p *parents) service(k spanKey) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.cur[k]; ok {
		return s, true
	}
	s, ok := p.prev[k]
	return s, ok
}

// remember records the services of spans once they are stored.
func (p *parents) remember(spans []model.Span) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range spans {
		if len(p.cur) >= recentSpans {
			p.prev, p.cur = p.cur, make(map[spanKey]string, recentSpans)
		}
		p.cur[spanKey{spans[i].TraceID, spans[i].SpanID}] = spans[i].Service
	}
}

// wait records that child waits for parent.
func (p *parents) wait(parent spanKey, child childRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.npending >= pendingMax/2 {
		p.oldPending, p.pending, p.npending = p.pending, make(map[spanKey][]childRef), 0
	}
	p.pending[parent] = append(p.pending[parent], child)
	p.npending++
}

// waiting returns the children waiting for parent.
func (p *parents) waiting(parent spanKey) []childRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Concat(p.oldPending[parent], p.pending[parent])
}

// claim returns and forgets the children waiting for parent.
func (p *parents) claim(parent spanKey) []childRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	children := slices.Concat(p.oldPending[parent], p.pending[parent])
	p.npending -= len(p.pending[parent])
	delete(p.pending, parent)
	delete(p.oldPending, parent)
	return children
}

// resolved forgets the children of parents once their update is stored.
func (p *parents) resolved(keys []spanKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		p.npending -= len(p.pending[k])
		delete(p.pending, k)
		delete(p.oldPending, k)
	}
}

// parentOf returns the span's parent in its own trace: ParentSpanID, else
// its first CHILD_OF reference within the trace.
func parentOf(s *model.Span) (spanKey, bool) {
	if !s.ParentSpanID.IsZero() {
		return spanKey{s.TraceID, s.ParentSpanID}, true
	}
	for _, r := range s.References {
		if r.Type == model.RefChildOf && r.TraceID == s.TraceID && !r.SpanID.IsZero() {
			return spanKey{s.TraceID, r.SpanID}, true
		}
	}
	return spanKey{}, false
}

// callerKeys returns the spans whose service is the caller of s, most
// likely first: for a span naming a Zipkin shared id as its parent, the
// server half of that shared span, then the parent itself.
func callerKeys(s *model.Span) []spanKey {
	pk, ok := parentOf(s)
	if !ok {
		return nil
	}
	if s.IsSharedServer() {
		return []spanKey{pk}
	}
	return []spanKey{{pk.trace, model.SharedServerSpanID(pk.trace, pk.span)}, pk}
}

// resolveParents sets vigil.parentService on the documents of spans whose
// parent's service is known, and returns update items for earlier children
// of these spans and the parents those updates resolve. A lookup that
// fails leaves documents unresolved; it never fails the write.
func (s *Store) resolveParents(ctx context.Context, spans []model.Span, docs []spanDoc) ([]item, []spanKey) {
	inBatch := make(map[spanKey]string, len(spans))
	for i := range spans {
		inBatch[spanKey{spans[i].TraceID, spans[i].SpanID}] = spans[i].Service
	}
	var updates []item
	var resolved []spanKey
	update := func(children []childRef, service string) {
		doc, _ := json.Marshal(obj{"doc": obj{"vigil": obj{"parentService": service}}})
		for _, c := range children {
			line := updateAction(c.index, c.id)
			line = append(append(line, doc...), '\n')
			updates = append(updates, item{what: "parent service of span " + c.id, line: line, span: -1, update: true})
		}
	}
	// The server half of a Zipkin shared span takes the children that came
	// before it and wait for the shared id: they are its own.
	for i := range spans {
		if spans[i].IsSharedServer() {
			update(s.parents.claim(spanKey{spans[i].TraceID, spans[i].ParentSpanID}), spans[i].Service)
		}
	}
	var lookups []int // spans whose caller is neither in the batch nor recent
	for i := range spans {
		keys := callerKeys(&spans[i])
		for _, k := range keys {
			svc, ok := inBatch[k]
			if !ok {
				svc, ok = s.parents.service(k)
			}
			if ok {
				docs[i].Vigil.ParentService = svc
				break
			}
		}
		if len(keys) > 0 && docs[i].Vigil.ParentService == "" {
			lookups = append(lookups, i)
		}
	}
	if len(lookups) > 0 {
		found := s.lookupServices(ctx, spans, lookups)
		for _, i := range lookups {
			keys := callerKeys(&spans[i])
			for _, k := range keys {
				if svc, ok := found[k]; ok {
					docs[i].Vigil.ParentService = svc
					break
				}
			}
			if docs[i].Vigil.ParentService == "" {
				day := time.Unix(0, spans[i].StartTime).UTC()
				s.parents.wait(keys[len(keys)-1], childRef{s.spanIndex(day), docs[i].TraceID + docs[i].SpanID})
			}
		}
	}
	for i := range spans {
		k := spanKey{spans[i].TraceID, spans[i].SpanID}
		children := s.parents.waiting(k)
		if len(children) == 0 {
			continue
		}
		resolved = append(resolved, k)
		update(children, spans[i].Service)
	}
	return updates, resolved
}

// lookupServices fetches, with a realtime multi-get, the services of the
// callers (callerKeys) of spans[i] for i in idx, from the span index of the
// child's day and of the day before.
func (s *Store) lookupServices(ctx context.Context, spans []model.Span, idx []int) map[spanKey]string {
	type doc struct {
		Index  string   `json:"_index"`
		ID     string   `json:"_id"`
		Source []string `json:"_source"`
	}
	var docs []doc
	keys := map[string]spanKey{}
	for _, i := range idx {
		day := time.Unix(0, spans[i].StartTime).UTC()
		for _, k := range callerKeys(&spans[i]) {
			id := traceIDString(k.trace) + k.span.String()
			keys[id] = k
			for _, d := range []time.Time{day, day.Add(-parentLookback)} {
				docs = append(docs, doc{Index: s.spanIndex(d), ID: id, Source: []string{"process.serviceName"}})
			}
		}
	}
	body, _ := json.Marshal(obj{"docs": docs})
	status, resp, err := s.c.Do(ctx, http.MethodPost, "/_mget", body, "")
	if err != nil || status != http.StatusOK {
		return nil
	}
	var r struct {
		Docs []struct {
			ID     string `json:"_id"`
			Found  bool   `json:"found"`
			Source struct {
				Process struct {
					ServiceName string `json:"serviceName"`
				} `json:"process"`
			} `json:"_source"`
		} `json:"docs"`
	}
	if json.Unmarshal(resp, &r) != nil {
		return nil
	}
	found := map[spanKey]string{}
	for _, d := range r.Docs {
		if d.Found {
			found[keys[d.ID]] = d.Source.Process.ServiceName
		}
	}
	return found
}

// updateAction is the bulk action of a partial update of one span
// document; Elasticsearch retries it itself when another ingester's
// update of the same document raced it (both set the same value).
func updateAction(index, id string) []byte {
	b := appendQuoted([]byte(`{"update":{"_index":`), index)
	b = appendQuoted(append(b, `,"_id":`...), id)
	return append(b, `,"retry_on_conflict":5}}`+"\n"...)
}

// WriteDependencies writes the calls between services of the spans that
// started on day's UTC day, as far as they are stored, to
// jaeger-dependencies-YYYY-MM-DD: one document per day, timestamped at its
// midnight, as Jaeger's Spark job writes it, replaced on every write (its
// id is the day), so several ingesters writing it agree.
func (s *Store) WriteDependencies(ctx context.Context, day time.Time) error {
	start := day.UTC().Truncate(24 * time.Hour)
	deps, err := s.Dependencies(ctx, start.Add(24*time.Hour).UnixNano()-1, 24*time.Hour)
	if err != nil {
		return err
	}
	type link struct {
		Parent    string `json:"parent"`
		Child     string `json:"child"`
		CallCount uint64 `json:"callCount"`
	}
	links := make([]link, 0, len(deps))
	for _, d := range deps {
		links = append(links, link{d.Parent, d.Child, d.CallCount})
	}
	path := "/" + s.prefix + depIndexPart + start.Format(dayLayout) + "/_doc/" + start.Format(dayLayout)
	return s.c.PutJSON(ctx, path, obj{"timestamp": start.Format(time.RFC3339), "dependencies": links})
}
