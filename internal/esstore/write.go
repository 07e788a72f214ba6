package esstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// maxDocBytes: a document larger than this is rejected without being sent
// (Elasticsearch's default http.max_content_length is 100 MB).
const maxDocBytes = 64 << 20

// encoded is a batch of records serialised as bulk "create" actions.
type encoded struct {
	buf  []byte
	off  []int // record i is buf[off[i]:off[i+1]]
	recs []model.LogRecord
}

func (e *encoded) item(i int) []byte { return e.buf[e.off[i]:e.off[i+1]] }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// encode writes each record as a "create" action and its document. create,
// not index: a redelivered record finds its id taken and gets 409, which
// Write counts as success. The first write of an id wins, nothing is
// rewritten (index would delete and re-add the same document, leaving
// tombstones for merges to clean up after every replay), and the ingester's
// contract — records already stored are skipped — holds literally.
func (s *Store) encode(recs []model.LogRecord, buf []byte) *encoded {
	size := 0
	for i := range recs { // grow once: JSON adds about 400 bytes to the strings
		size += 400 + len(recs[i].Message) + len(recs[i].Service) + len(recs[i].Host)
		for _, a := range recs[i].Attributes {
			size += 8 + len(a.Key) + len(a.Value)
		}
	}
	e := &encoded{buf: slices.Grow(buf[:0], size), off: make([]int, 0, len(recs)+1), recs: recs}
	lastDay, lastName := int64(-1<<63), ""
	for i := range recs {
		r := &recs[i]
		e.off = append(e.off, len(e.buf))
		if d := indexDay(r.Timestamp); d != lastDay || lastName == "" {
			lastDay, lastName = d, s.dayIndex(d)
		}
		e.buf = append(e.buf, `{"create":{"_index":"`...)
		e.buf = append(e.buf, lastName...)
		e.buf = append(e.buf, `","_id":"`...)
		e.buf = appendHexID(e.buf, r.ID)
		e.buf = append(e.buf, "\"}}\n"...)
		e.buf = appendDoc(e.buf, r)
		e.buf = append(e.buf, '\n')
	}
	e.off = append(e.off, len(e.buf))
	return e
}

// Write stores recs. It returns nil only when every record is durable in
// Elasticsearch — the bulk API acknowledges after the translog is fsynced
// (index.translog.durability: request, the default). Records Elasticsearch
// refuses permanently (a mapping or parse error, a document too large) are
// reported with a *storage.RejectedError, with Elasticsearch's reasons,
// once every other record is durable. Records whose id is already stored
// are skipped. Items answered 429 or 5xx are resent alone with exponential
// backoff; a request that fails as a whole is retried the same way, and
// after opts.MaxAttempts Write returns an error so the caller retries later.
func (s *Store) Write(ctx context.Context, recs []model.LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	e := s.encode(recs, *bp)
	defer func() {
		if cap(e.buf) <= 64<<20 {
			*bp = e.buf[:0]
			bufPool.Put(bp)
		}
	}()

	w := &writer{s: s, e: e}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.BulkConcurrency)
	var batch []int
	batchBytes := 0
	for i := range recs {
		n := len(e.item(i))
		if n > maxDocBytes {
			w.reject(i, fmt.Sprintf("document_too_large: %d bytes, more than %d", n, maxDocBytes), "document_too_large")
			continue
		}
		if len(batch) > 0 && (len(batch) >= s.opts.BulkMaxDocs || batchBytes+n > s.opts.BulkMaxBytes) {
			b := batch
			g.Go(func() error { return w.send(gctx, b) })
			batch, batchBytes = nil, 0
		}
		batch = append(batch, i)
		batchBytes += n
	}
	if len(batch) > 0 {
		g.Go(func() error { return w.send(gctx, batch) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return w.rejectedError()
}

type writer struct {
	s *Store
	e *encoded

	mu       sync.Mutex // guards rejected
	rejected []storage.Rejection
}

// send writes the records idx, resending only items that failed
// transiently.
func (w *writer) send(ctx context.Context, idx []int) error {
	return w.s.bulk.Send(ctx, idx, w.body, func(i int, r es.ItemResult) error {
		s := w.s
		switch r.Outcome {
		case es.Created:
			s.m.docsIndexed.Inc()
		case es.Duplicate:
			s.m.docsDuplicate.Inc()
		case es.Rejected:
			w.reject(i, r.Reason, r.ErrType)
		default:
			rec := &w.e.recs[i]
			return fmt.Errorf("cannot index record %s into %s: status %d: %s (check the cluster and the index, the record itself is not at fault)",
				rec.ID, s.dayIndex(indexDay(rec.Timestamp)), r.Status, r.Reason)
		}
		return nil
	})
}

// body returns the bulk actions of the records idx.
func (w *writer) body(idx []int) []byte {
	if contiguous(idx) {
		return w.e.buf[w.e.off[idx[0]]:w.e.off[idx[len(idx)-1]+1]]
	}
	var body []byte
	for _, i := range idx {
		body = append(body, w.e.item(i)...)
	}
	return body
}

func contiguous(idx []int) bool {
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return false
		}
	}
	return true
}

// reject notes that Elasticsearch refused record i permanently. It may be
// called from several goroutines.
func (w *writer) reject(i int, reason, errType string) {
	w.mu.Lock()
	w.rejected = append(w.rejected, storage.Rejection{Index: i, Reason: reason})
	w.mu.Unlock()
	w.s.m.docsRejected.WithLabelValues(errType).Inc()
	w.s.logger.Debug("record rejected by elasticsearch", "id", w.e.recs[i].ID, "reason", reason)
}

// rejectedError reports the records Elasticsearch refused, in batch
// order, or nil.
func (w *writer) rejectedError() error {
	if len(w.rejected) == 0 {
		return nil
	}
	slices.SortFunc(w.rejected, func(a, b storage.Rejection) int { return cmp.Compare(a.Index, b.Index) })
	return &storage.RejectedError{Items: w.rejected}
}
