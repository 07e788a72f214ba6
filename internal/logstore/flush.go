package logstore

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// The flusher goroutine writes frozen heads out as blocks; the merger
// goroutine (compact.go) merges small blocks. Both run from Open to Close and
// are the only writers of partition files, serialised per partition by
// partition.writeMu.

const flushRetry = 5 * time.Second

func (s *Store) flushLoop() {
	defer close(s.flusherDone)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-s.flushReq:
		case <-retry.C:
		case <-s.stop:
			_ = s.flushFrozen() // it logs its error; the rows stay in the WAL for the next start
			return
		}
		if err := s.flushFrozen(); err != nil {
			retry.Reset(flushRetry)
		}
	}
}

// flushFrozen writes out the frozen heads, oldest first, and tells the
// merger.
func (s *Store) flushFrozen() error {
	for {
		s.mu.RLock()
		var h *head
		if len(s.frozen) > 0 {
			h = s.frozen[0]
		}
		s.mu.RUnlock()
		if h == nil {
			return nil
		}
		start := time.Now()
		err := s.flushHead(h)
		s.mu.Lock()
		s.flushErr = err
		s.frozenCond.Broadcast()
		s.mu.Unlock()
		if err != nil {
			s.log.Error("cannot write log store head to blocks; will retry", "err", err)
			return err
		}
		s.log.Debug("wrote log store head", "rows", h.rows, "duration", time.Since(start))
		select {
		case s.mergeReq <- struct{}{}:
		default:
		}
	}
}

// flushHead writes h's rows as blocks to their partitions, then in one step
// publishes the blocks and retires h, so that a query sees each row once.
func (s *Store) flushHead(h *head) error {
	byDay := map[int32][]*memStream{}
	for k, ms := range h.streams {
		byDay[k.day] = append(byDay[k.day], ms)
	}
	days := make([]int32, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	if h.written == nil {
		h.written = map[int32][]*blockMeta{}
	}
	minDay := s.minDay.Load()
	var parts []*partition
	defer func() {
		for _, p := range parts {
			p.release()
		}
	}()
	for _, day := range days {
		if _, ok := h.written[day]; ok || day < minDay {
			continue
		}
		p, err := s.partitionFor(day)
		if errors.Is(err, errExpired) {
			continue
		}
		if err != nil {
			return err
		}
		parts = append(parts, p)
		streams := byDay[day]
		slices.SortFunc(streams, func(a, b *memStream) int { return cmp.Compare(a.sid, b.sid) })
		metas, err := s.writeBlocks(p, streams, h.seq)
		if err != nil {
			return err
		}
		h.written[day] = metas
	}

	s.mu.Lock()
	var blocks int
	for day, metas := range h.written {
		p := s.parts[day]
		if p == nil { // dropped by retention meanwhile
			continue
		}
		p.lastAdd = time.Now().UnixNano()
		for _, m := range metas {
			p.addBlock(m, s.tune.smallRows)
		}
		blocks += len(metas)
	}
	if i := slices.Index(s.frozen, h); i >= 0 {
		s.frozen = slices.Delete(s.frozen, i, i+1)
	}
	s.mu.Unlock()
	s.m.blocksWritten.Add(float64(blocks))
	for _, seg := range h.segs {
		if err := seg.retire(); err != nil {
			s.log.Warn("cannot remove written WAL segment", "segment", seg.path, "err", err)
		}
	}
	return nil
}

// partitionFor returns the partition of day, creating it if needed, with a
// reference the caller releases.
func (s *Store) partitionFor(day int32) (*partition, error) {
	s.mu.RLock()
	p := s.parts[day]
	if p != nil {
		p.acquire()
	}
	s.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	p, err := openPartition(s.opts.Dir, day, s.log, s.tune.smallRows)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if day < s.minDay.Load() { // Retain ran meanwhile
		s.mu.Unlock()
		return nil, errors.Join(p.drop(), errExpired)
	}
	p.acquire()
	s.parts[day] = p
	s.mu.Unlock()
	return p, nil
}

// errExpired means a partition's day went past retention.
var errExpired = errors.New("partition past retention")

// flushBuffer is how many bytes of encoded blocks are buffered before they
// are written (not yet synced) to the data file.
const flushBuffer = 4 << 20

// writeBlocks makes the rows of streams durable in p: new streams first,
// then the blocks, then their index record. It does not publish them.
func (s *Store) writeBlocks(p *partition, streams []*memStream, seq uint64) ([]*blockMeta, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	var srec []byte
	var added []*memStream
	s.mu.RLock()
	for _, ms := range streams {
		if p.streams[ms.sid] == nil {
			srec = appendStreamRecord(srec, ms.sid, ms.labels)
			added = append(added, ms)
		}
	}
	s.mu.RUnlock()
	if len(srec) > 0 {
		if err := p.appendFile(p.streamsF, &p.streamsSize, srec); err != nil {
			return nil, err
		}
		s.mu.Lock()
		for _, ms := range added {
			p.streams[ms.sid] = &streamInfo{labels: ms.labels, minTs: 1<<63 - 1, maxTs: -1 << 63}
		}
		s.mu.Unlock()
	}

	var metas, pending []*blockMeta
	buf := s.flushBuf[:0]
	write := func() error {
		base, err := p.writeData(buf)
		for _, m := range pending {
			m.off += base
		}
		buf, pending = buf[:0], pending[:0]
		return err
	}
	for _, ms := range streams {
		idx := sortedOrder(ms.rows)
		for lo := 0; lo < len(idx); lo += maxBlockRows {
			var m blockMeta
			buf, m = s.enc.encode(buf, ms.sid, ms.rows, idx[lo:min(lo+maxBlockRows, len(idx))])
			m.seq = seq
			metas = append(metas, &m)
			pending = append(pending, &m)
		}
		if len(buf) >= flushBuffer {
			if err := write(); err != nil {
				return nil, err
			}
		}
	}
	err := write()
	s.flushBuf = buf
	if err == nil {
		err = p.syncData()
	}
	if err != nil {
		return nil, err
	}
	if err := p.appendFile(p.index, &p.indexSize, appendIndexRecord(nil, idxFlush, seq, nil, metas)); err != nil {
		return nil, err
	}
	for _, m := range metas {
		p.indexed[m.off] = m
	}
	p.flushedSeq = max(p.flushedSeq, seq)
	return metas, nil
}
