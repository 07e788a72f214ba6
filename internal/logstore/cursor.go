package logstore

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/storage"
)

// cursor walks the matching rows of one source in timestamp order.
type cursor struct {
	src      *source
	rows     []int32 // matching row indexes, ascending by timestamp
	k        int     // current position in rows
	backward bool
	blk      *blockCols // a block's rows, or
	mem      []row      // a head stream's rows
}

func (c *cursor) ts() int64 {
	if c.blk != nil {
		return c.blk.ts[c.rows[c.k]]
	}
	return c.mem[c.rows[c.k]].ts
}

// advance moves to the next row and reports whether there is one.
func (c *cursor) advance() bool {
	if c.backward {
		c.k--
		return c.k >= 0
	}
	c.k++
	return c.k < len(c.rows)
}

func (c *cursor) fill(r *storage.Row) error {
	i := int(c.rows[c.k])
	r.Labels = c.src.labels
	if c.blk != nil {
		return c.blk.fillRow(r, i)
	}
	m := &c.mem[i]
	r.ID = m.id
	r.Timestamp = m.ts
	r.ObservedTimestamp = m.obs
	r.Message = m.msg
	r.TraceID = m.trace
	r.SpanID = m.span
	r.Truncated = m.trunc
	var err error
	r.Attributes, err = decodeAttrs(r.Attributes[:0], m.attrs)
	return err
}

// cursorHeap orders cursors by their current row: the earliest first, or the
// latest first when backward; ties go to the lower source rank (the higher
// when backward), so backward order is the exact reverse of forward.
type cursorHeap struct {
	backward bool
	c        []*cursor
}

func (h *cursorHeap) less(a, b *cursor) bool {
	ta, tb := a.ts(), b.ts()
	if h.backward {
		return ta > tb || (ta == tb && a.src.rank > b.src.rank)
	}
	return ta < tb || (ta == tb && a.src.rank < b.src.rank)
}

func (h *cursorHeap) push(c *cursor) {
	h.c = append(h.c, c)
	i := len(h.c) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.c[i], h.c[parent]) {
			break
		}
		h.c[i], h.c[parent] = h.c[parent], h.c[i]
		i = parent
	}
}

func (h *cursorHeap) pop() {
	n := len(h.c) - 1
	h.c[0] = h.c[n]
	h.c[n] = nil
	h.c = h.c[:n]
	if n > 0 {
		h.fix()
	}
}

// fix restores the heap after the top cursor advanced.
func (h *cursorHeap) fix() {
	i, n := 0, len(h.c)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h.less(h.c[r], h.c[l]) {
			j = r
		}
		if !h.less(h.c[j], h.c[i]) {
			return
		}
		h.c[i], h.c[j] = h.c[j], h.c[i]
		i = j
	}
}

// prefetcher loads a query's sources ahead of the merge on all cores. It is
// used when rows are filtered by message, where loading (read, decompress,
// scan) is the work and most sources yield few rows. Sources are claimed in
// merge order and at most lookahead of them wait unconsumed, so a query that
// stops early wastes little.
type prefetcher struct {
	q    *query
	next atomic.Int64
	sem  chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func newPrefetcher(q *query) *prefetcher {
	workers := min(runtime.GOMAXPROCS(0), len(q.srcs))
	pf := &prefetcher{q: q, sem: make(chan struct{}, 2*workers), stop: make(chan struct{})}
	for _, src := range q.srcs {
		src.done = make(chan struct{})
	}
	pf.wg.Add(workers)
	for range workers {
		go pf.work()
	}
	return pf
}

func (pf *prefetcher) work() {
	defer pf.wg.Done()
	f := newLineFilter(pf.q.p.Contains, pf.q.p.ContainsFold, pf.q.p.ContainsAny)
	for {
		select {
		case pf.sem <- struct{}{}:
		case <-pf.stop:
			return
		}
		i := int(pf.next.Add(1) - 1)
		if i >= len(pf.q.srcs) {
			return
		}
		src := pf.q.srcs[i]
		if err := pf.q.ctx.Err(); err != nil {
			src.err = err
		} else {
			src.cur, src.err = pf.q.load(src, f)
		}
		close(src.done)
	}
}

func (pf *prefetcher) get(src *source) (*cursor, error) {
	select {
	case <-src.done:
	case <-pf.q.ctx.Done():
		return nil, pf.q.ctx.Err()
	}
	<-pf.sem
	return src.cur, src.err
}

func (pf *prefetcher) close() {
	close(pf.stop)
	pf.wg.Wait()
}
