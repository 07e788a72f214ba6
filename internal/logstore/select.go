package logstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

// Select calls fn for each matching row, in timestamp order (newest first
// when p.Backward), merged across streams and partitions; rows with equal
// timestamps come in an unspecified but stable order. fn returns false to
// stop early.
//
// The Row and everything it points to (strings, Attributes) are only valid
// during the call to fn: the callback must copy what it keeps. Labels may be
// shared between rows of one stream and must not be modified.
//
// A query sees each row of the store at most once: all of a Write or none,
// and blocks only once fully written.
func (s *Store) Select(ctx context.Context, p storage.SelectParams, fn func(*storage.Row) bool) error {
	if p.End <= p.Start {
		return nil
	}
	q, err := s.newQuery(ctx, p)
	if err != nil {
		return err
	}
	defer q.release()
	return q.run(fn)
}

// source is a candidate run of rows of one stream: a block or a head stream.
type source struct {
	minTs, maxTs int64
	labels       model.Labels
	key          streamKey
	part         *partition // with meta, for a block
	meta         *blockMeta
	mem          *memSnapshot // for a head stream
	rank         int          // breaks timestamp ties

	done chan struct{} // closed when a prefetcher has loaded cur and err
	cur  *cursor
	err  error
}

type query struct {
	s      *Store
	ctx    context.Context
	p      storage.SelectParams
	filter *lineFilter
	tri    []uint32 // trigrams every matching block's bloom must hold
	// triAny: per ContainsAny group, the trigrams of each text; a matching
	// block's bloom holds all trigrams of some text of every group.
	triAny [][][]uint32
	srcs   []*source
	parts  []*partition
	pf     *prefetcher
	// budget is charged the bytes of every block and head row the query
	// reads (--query.max-bytes-scanned).
	budget querylimit.Budget

	scanned, pruned atomic.Int64
}

// newQuery takes a snapshot of the blocks and head streams that may hold
// matching rows.
func (s *Store) newQuery(ctx context.Context, p storage.SelectParams) (*query, error) {
	q := &query{s: s, ctx: ctx, p: p, filter: newLineFilter(p.Contains, p.ContainsFold, p.ContainsAny), budget: querylimit.BudgetOf(ctx)}
	q.tri = needleTrigrams(q.filter.contains, q.filter.fold)
	for _, g := range q.filter.any {
		alts := make([][]uint32, len(g))
		for i, s := range g {
			if alts[i] = needleTrigrams([]string{s}); len(alts[i]) == 0 {
				alts = nil // a text too short for trigrams: the block may hold it
				break
			}
		}
		if alts != nil {
			q.triAny = append(q.triAny, alts)
		}
	}
	overlaps := func(minTs, maxTs int64) bool { return maxTs >= p.Start && minTs < p.End }
	dayLo, dayHi := dayOf(p.Start), dayOf(p.End-1)
	minDay := s.minDay.Load()
	keepDay := func(d int32) bool { return d >= dayLo && d <= dayHi && d >= minDay }

	s.mu.RLock()
	if s.queryDone {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	for day, part := range s.parts {
		if !keepDay(day) {
			continue
		}
		matched := map[uint64]model.Labels{}
		for sid, si := range part.streams {
			if overlaps(si.minTs, si.maxTs) && model.MatchLabels(p.Matchers, si.labels) {
				matched[sid] = si.labels
			}
		}
		if len(matched) == 0 {
			continue
		}
		part.acquire()
		q.parts = append(q.parts, part)
		for _, m := range part.blocks {
			if ls, ok := matched[m.sid]; ok && overlaps(m.minTs, m.maxTs) {
				q.srcs = append(q.srcs, &source{minTs: m.minTs, maxTs: m.maxTs, labels: ls, key: streamKey{day, m.sid}, part: part, meta: m})
			}
		}
	}
	heads := append([]*head{s.active}, s.frozen...)
	s.mu.RUnlock()

	for _, h := range heads {
		snaps := h.snapshot(func(ms *memStream) bool {
			return keepDay(ms.day) && overlaps(ms.minTs, ms.maxTs) && model.MatchLabels(p.Matchers, ms.labels)
		})
		for i := range snaps {
			sn := &snaps[i]
			q.srcs = append(q.srcs, &source{minTs: sn.minTs, maxTs: sn.maxTs, labels: sn.labels, key: sn.key, mem: sn})
		}
	}
	// Rank sources the same way in both directions, so that a backward
	// query returns exactly the reverse of a forward one.
	slices.SortFunc(q.srcs, func(a, b *source) int {
		return cmp.Or(cmp.Compare(a.minTs, b.minTs), cmp.Compare(a.maxTs, b.maxTs),
			cmp.Compare(a.key.day, b.key.day), cmp.Compare(a.key.sid, b.key.sid), cmp.Compare(a.offset(), b.offset()))
	})
	for i, src := range q.srcs {
		src.rank = i
	}
	if p.Backward {
		slices.SortStableFunc(q.srcs, func(a, b *source) int { return cmp.Compare(b.maxTs, a.maxTs) })
	}
	return q, nil
}

func (src *source) offset() int64 {
	if src.meta != nil {
		return src.meta.off
	}
	return -1
}

func (q *query) release() {
	if q.pf != nil {
		q.pf.close()
	}
	for _, p := range q.parts {
		p.release()
	}
	q.s.m.blocksScanned.Add(float64(q.scanned.Load()))
	q.s.m.blocksPruned.Add(float64(q.pruned.Load()))
}

func (q *query) run(fn func(*storage.Row) bool) error {
	if !q.filter.empty() && len(q.srcs) > 1 {
		q.pf = newPrefetcher(q)
	}
	h := cursorHeap{backward: q.p.Backward}
	var row storage.Row
	next, n := 0, 0
	for {
		for next < len(q.srcs) && (len(h.c) == 0 || q.mayPrecede(q.srcs[next], h.c[0].ts())) {
			c, err := q.open(next)
			next++
			if err != nil {
				return err
			}
			if c != nil {
				h.push(c)
			}
		}
		if len(h.c) == 0 {
			return nil
		}
		c := h.c[0]
		if err := c.fill(&row); err != nil {
			return err
		}
		if !fn(&row) {
			return nil
		}
		if c.advance() {
			h.fix()
		} else {
			h.pop()
		}
		if n++; n&1023 == 0 {
			if err := q.ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// mayPrecede reports whether src may hold a row that comes no later than
// a row at ts, so that it must be opened before that row is emitted.
func (q *query) mayPrecede(src *source, ts int64) bool {
	if q.p.Backward {
		return src.maxTs >= ts
	}
	return src.minTs <= ts
}

// open returns the cursor over the matching rows of source i, or nil.
func (q *query) open(i int) (*cursor, error) {
	src := q.srcs[i]
	if q.pf != nil {
		return q.pf.get(src)
	}
	if err := q.ctx.Err(); err != nil {
		return nil, err
	}
	return q.load(src, q.filter)
}

// load reads a source and finds its matching rows. It may run on a
// prefetcher goroutine, so it only touches src and its own filter.
func (q *query) load(src *source, f *lineFilter) (*cursor, error) {
	if src.mem != nil {
		return q.loadMem(src, f)
	}
	p, m := src.part, src.meta
	if len(q.tri) > 0 || len(q.triAny) > 0 {
		if err := q.budget.Charge(int(m.bloomLen)); err != nil {
			return nil, err
		}
		buf := getBuffer(int(m.bloomLen))
		bloom, err := p.readBlock(m, true, buf)
		if err != nil {
			return nil, q.blockError(p, m, err)
		}
		ok := bloomMayContainAll(bloom, q.tri)
		for _, g := range q.triAny {
			ok = ok && slices.ContainsFunc(g, func(keys []uint32) bool { return bloomMayContainAll(bloom, keys) })
		}
		putBuffer(bloom)
		if !ok {
			q.pruned.Add(1)
			return nil, nil
		}
	}
	q.scanned.Add(1)
	if err := q.budget.Charge(int(m.colsLen)); err != nil {
		return nil, err
	}
	raw, err := p.readBlock(m, false, getBuffer(int(m.colsLen)))
	if err != nil {
		return nil, q.blockError(p, m, err)
	}
	cols, err := parseBlockCols(raw)
	if err != nil {
		return nil, q.blockError(p, m, err)
	}
	// Until rows match, the block's buffers are pooled: most blocks a line
	// filter scans yield nothing, and their buffers serve the next ones.
	cols.pooled, cols.pooledRaw = true, raw
	lo := sort.Search(cols.rows, func(i int) bool { return cols.ts[i] >= q.p.Start })
	hi := sort.Search(cols.rows, func(i int) bool { return cols.ts[i] >= q.p.End })
	if lo >= hi {
		cols.release()
		return nil, nil
	}
	rows := make([]int32, 0, hi-lo)
	if f.empty() {
		for i := lo; i < hi; i++ {
			rows = append(rows, int32(i))
		}
	} else {
		if err := cols.loadColumn(fcolMsg, lo, hi); err != nil {
			return nil, q.blockError(p, m, err)
		}
		for i, msg := range cols.strs[fcolMsg][lo:hi] {
			if f.match(msg) {
				rows = append(rows, int32(lo+i))
			}
		}
	}
	if len(rows) == 0 {
		cols.release()
		return nil, nil
	}
	// Rows will be passed to fn: from here on the block's memory belongs
	// to the garbage collector.
	cols.pooled, cols.bufs, cols.pooledRaw = false, nil, nil
	return &cursor{src: src, rows: rows, blk: cols, backward: q.p.Backward, k: q.start(len(rows))}, nil
}

// blockError turns a corrupt block into a logged, counted skip: one bad
// block must not make every query over its partition fail. I/O errors are
// returned.
func (q *query) blockError(p *partition, m *blockMeta, err error) error {
	if !errors.Is(err, errCorrupt) {
		return err
	}
	q.s.m.corruptBlocks.Inc()
	q.s.log.Error("skipping corrupt log block", "partition", p.name, "offset", m.off, "err", err)
	return nil
}

func (q *query) loadMem(src *source, f *lineFilter) (*cursor, error) {
	rs := src.mem.rows
	var order []int32
	if src.mem.sorted {
		lo := sort.Search(len(rs), func(i int) bool { return rs[i].ts >= q.p.Start })
		hi := sort.Search(len(rs), func(i int) bool { return rs[i].ts >= q.p.End })
		order = make([]int32, 0, max(hi-lo, 0))
		n := 0
		for i := lo; i < hi; i++ {
			n += len(rs[i].msg)
		}
		if err := q.budget.Charge(n); err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			if f.empty() || f.match(rs[i].msg) {
				order = append(order, int32(i))
			}
		}
	} else {
		n := 0
		for i := range rs {
			n += len(rs[i].msg)
		}
		if err := q.budget.Charge(n); err != nil {
			return nil, err
		}
		order = sortedOrder(rs)
		order = slices.DeleteFunc(order, func(i int32) bool {
			return rs[i].ts < q.p.Start || rs[i].ts >= q.p.End || !(f.empty() || f.match(rs[i].msg))
		})
	}
	if len(order) == 0 {
		return nil, nil
	}
	return &cursor{src: src, rows: order, mem: rs, backward: q.p.Backward, k: q.start(len(order))}, nil
}

func (q *query) start(n int) int {
	if q.p.Backward {
		return n - 1
	}
	return 0
}
