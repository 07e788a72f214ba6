package logstore

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/fsutil"
)

// Merging. A head flush writes one block per stream, so with many streams
// its blocks are small: ~650 rows for 320 streams and a 64 MiB head. Small
// blocks compress a little worse and, above all, each carries a bloom
// filter. The merger goroutine merges a stream's small blocks of a partition
// into full zstd blocks once there are tuning.mergeBlocks of them, and once
// a day is over it also recompresses that day's remaining S2 blocks. Merged
// blocks are appended to the same data file and swapped in by one index
// record; the replaced byte ranges are punched out of the file once no
// query reads them.

const (
	// maxMergeRows bounds the rows one merge holds in memory.
	maxMergeRows = 8 * maxBlockRows
	// mergeBuffer bounds the merged blocks buffered before a commit.
	mergeBuffer = 32 << 20
	// A partition is sealed sealDelay after its day ended, once no block
	// was added to it for sealIdle; late rows may still arrive and are
	// merged in turn. Sealing waits for idleness so that a backfill of an
	// old day is merged like today's rows, not recompressed at every flush.
	sealDelay = time.Hour
	sealIdle  = 10 * time.Minute
)

// mergeCall asks the merger to run as if the time were now (see settle).
type mergeCall struct {
	now  time.Time
	done chan struct{}
}

func (s *Store) mergeLoop() {
	defer close(s.mergerDone)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case c := <-s.mergeCalls:
			s.mergeAll(c.now)
			close(c.done)
			continue
		case <-s.mergeReq:
		case <-tick.C:
		}
		s.mergeAll(time.Now())
	}
}

func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// mergeAll merges what needs merging in every partition.
func (s *Store) mergeAll(now time.Time) {
	s.mu.RLock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		p.acquire()
		parts = append(parts, p)
	}
	s.mu.RUnlock()
	slices.SortFunc(parts, func(a, b *partition) int { return cmp.Compare(a.day, b.day) })
	for _, p := range parts {
		if !s.stopping() {
			start := time.Now()
			n, err := s.mergePartition(p, now)
			if err != nil {
				s.log.Error("cannot merge small log blocks", "partition", p.name, "err", err)
			} else if n > 0 {
				s.log.Debug("merged log blocks", "partition", p.name, "blocks", n, "duration", time.Since(start))
			}
		}
		p.release()
	}
}

// mergePartition merges the small blocks of p's streams that have enough of
// them, or all S2 blocks if p's day is over. It returns how many blocks it
// replaced.
func (s *Store) mergePartition(p *partition, now time.Time) (int, error) {
	groups := map[uint64][]*blockMeta{}
	s.mu.RLock()
	sealed := now.UnixNano() > (int64(p.day)+1)*dayNs+int64(sealDelay) && now.UnixNano()-p.lastAdd > int64(sealIdle)
	l0 := p.l0Added
	if sealed && l0 != p.l0Merged {
		for _, m := range p.blocks {
			if m.flags&flagMerged == 0 || int(m.rows) < s.tune.smallRows {
				groups[m.sid] = append(groups[m.sid], m)
			}
		}
		for sid, ms := range groups {
			if len(ms) == 1 && ms[0].flags&flagMerged != 0 {
				delete(groups, sid) // a lone merged small block: nothing to gain
			}
		}
	} else {
		for sid, ms := range p.small {
			if len(ms) >= s.tune.mergeBlocks {
				groups[sid] = slices.Clone(ms)
			}
		}
	}
	s.mu.RUnlock()
	sids := make([]uint64, 0, len(groups))
	for sid := range groups {
		sids = append(sids, sid)
	}
	slices.Sort(sids)

	c := compaction{s: s, p: p}
	for _, sid := range sids {
		in := groups[sid]
		slices.SortFunc(in, func(a, b *blockMeta) int { return cmp.Compare(a.minTs, b.minTs) })
		for len(in) > 0 {
			if s.stopping() {
				return 0, nil // nothing was written; the next open resumes
			}
			n, rows := 0, 0
			for n < len(in) && (n == 0 || rows+int(in[n].rows) <= maxMergeRows) {
				rows += int(in[n].rows)
				n++
			}
			if err := c.merge(sid, in[:n]); err != nil {
				return 0, err
			}
			in = in[n:]
			if len(c.buf) >= mergeBuffer {
				if err := c.commit(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := c.commit(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if sealed {
		p.l0Merged = l0
	}
	rewrite := p.deadEntries > s.tune.rewriteDead && p.deadEntries > len(p.blocks)
	s.mu.Unlock()
	if rewrite {
		return c.replaced, s.rewriteIndex(p)
	}
	return c.replaced, nil
}

// compaction gathers merges of one partition so that they share one write,
// one fsync of the data file and one index record.
type compaction struct {
	s        *Store
	p        *partition
	buf      []byte // merged blocks, offsets relative to buf
	in, out  []*blockMeta
	rows     []row
	replaced int
}

// merge replaces blocks in (all of one stream) by full blocks in buf.
func (c *compaction) merge(sid uint64, in []*blockMeta) error {
	c.rows = c.rows[:0]
	var seq uint64
	for _, m := range in {
		raw, err := c.p.readBlock(m, false, nil)
		if err != nil {
			return err
		}
		cols, err := parseBlockCols(raw)
		if err == nil {
			c.rows, err = cols.appendRows(c.rows)
		}
		if err != nil {
			return fmt.Errorf("block at %d: %w", m.off, err)
		}
		seq = max(seq, m.seq)
	}
	idx := sortedOrder(c.rows)
	for lo := 0; lo < len(idx); lo += maxBlockRows {
		var m blockMeta
		c.buf, m = c.s.mergeEnc.encode(c.buf, sid, c.rows, idx[lo:min(lo+maxBlockRows, len(idx))])
		m.seq = seq
		c.out = append(c.out, &m)
	}
	c.in = append(c.in, in...)
	clear(c.rows) // drop references to decoded buffers
	return nil
}

// commit makes the merged blocks durable, swaps them in with one index
// record, publishes the swap and retires the replaced blocks.
func (c *compaction) commit() error {
	if len(c.in) == 0 {
		return nil
	}
	p := c.p
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	base, err := p.writeData(c.buf)
	if err == nil {
		err = p.syncData()
	}
	if err != nil {
		return err
	}
	for _, m := range c.out {
		m.off += base
	}
	if err := p.appendFile(p.index, &p.indexSize, appendIndexRecord(nil, idxReplace, 0, c.in, c.out)); err != nil {
		return err
	}
	for _, m := range c.in {
		delete(p.indexed, m.off)
	}
	for _, m := range c.out {
		p.indexed[m.off] = m
	}
	gone := make(map[*blockMeta]bool, len(c.in))
	exts := make([]extent, 0, len(c.in))
	for _, m := range c.in {
		gone[m] = true
		exts = append(exts, extent{m.off, m.end() - m.off})
	}
	c.s.mu.Lock()
	p.removeBlocks(gone)
	for _, m := range c.out {
		p.addBlock(m, c.s.tune.smallRows)
	}
	c.s.mu.Unlock()
	p.deadEntries += len(c.in)
	p.retire(exts)
	c.s.m.blocksMerged.Add(float64(len(c.in)))
	c.replaced += len(c.in)
	c.buf, c.in, c.out = c.buf[:0], nil, nil
	return nil
}

// rewriteIndex replaces p's index by one record of its live blocks, so that
// opening the store does not replay a long history of merges. It works from
// what the index holds, not from what is published: a flush may have
// written blocks it has not published yet.
func (s *Store) rewriteIndex(p *partition) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	live := make([]*blockMeta, 0, len(p.indexed))
	for _, m := range p.indexed {
		live = append(live, m)
	}
	slices.SortFunc(live, func(a, b *blockMeta) int { return cmp.Compare(a.off, b.off) })
	rec := appendIndexRecord(nil, idxSnapshot, p.flushedSeq, nil, live)
	path := filepath.Join(p.dir, indexFileName)
	if err := fsutil.WriteFileAtomic(path, rec, 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return fmt.Errorf("cannot reopen rewritten index: %w", err)
	}
	p.refMu.Lock()
	old := p.index
	p.index, p.indexSize = f, int64(len(rec))
	p.refMu.Unlock()
	p.deadEntries = 0
	return old.Close()
}
