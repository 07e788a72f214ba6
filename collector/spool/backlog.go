package spool

import (
	"sync"
	"sync/atomic"
)

// backlog accounts for what is spooled and not yet forwarded, lane by
// lane, and keeps the gauges in step. Publish adds batches after the log
// accepted them, so the forwarder can remove a batch before it was added;
// a lane's counts may be below zero for that moment, and the rules below
// keep its oldest right through it.
type backlog struct {
	m *metrics

	mu    sync.Mutex
	lanes [Grades]laneBacklog
	// reserved is the bytes of Publish calls under way, counted against
	// the spool's bound before their log has them.
	reserved int64
	// oldest is the enqueue time (Unix ns) of the oldest batch not yet
	// forwarded in any lane, or 0 when the spool is empty. Written under
	// mu, read by the age gauge at scrape time.
	oldest atomic.Int64
}

type laneBacklog struct {
	batches, bytes int64
	oldest         int64 // enqueue time of the lane's oldest batch, 0 when empty
}

// reserve counts size bytes of a Publish against the bound max and
// reports whether they fit beside what is spooled; release undoes it.
func (b *backlog) reserve(size, max int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	total := b.reserved
	for _, l := range b.lanes {
		total += l.bytes
	}
	if total+size > max {
		return false
	}
	b.reserved += size
	return true
}

func (b *backlog) release(size int64) {
	b.mu.Lock()
	b.reserved -= size
	b.mu.Unlock()
}

// added accounts for n batches of size bytes in all, published at enq
// into lane, whose bytes were reserved.
func (b *backlog) added(lane int, n, size, enq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reserved -= size
	l := &b.lanes[lane]
	l.batches += n
	l.bytes += size
	switch {
	case l.batches == 0: // the forwarder already removed them
		l.oldest = 0
	case l.oldest == 0:
		l.oldest = enq
	}
	b.update(lane)
}

// fetched records that the forwarder holds the batch of lane enqueued at
// enq. Every batch of the lane before it is forwarded, so it is the
// lane's oldest.
func (b *backlog) fetched(lane int, enq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lanes[lane].oldest = enq
	b.update(lane)
}

// removed accounts for a forwarded batch of lane of size bytes and
// reports whether the lane has no batch left to fetch. While batches are
// left the lane's oldest is unknown until its next fetch; the forwarded
// batch's time stands for it meanwhile.
func (b *backlog) removed(lane int, size int64) (drained bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := &b.lanes[lane]
	l.batches--
	l.bytes -= size
	if l.batches == 0 {
		l.oldest = 0
	}
	b.update(lane)
	return l.batches <= 0
}

// set replaces the counts of lane, when the spool opens.
func (b *backlog) set(lane int, batches, bytes, oldest int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lanes[lane] = laneBacklog{batches: batches, bytes: bytes, oldest: oldest}
	b.update(lane)
}

// snapshot returns the counts of every lane together.
func (b *backlog) snapshot() (batches, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lanes {
		batches += l.batches
		bytes += l.bytes
	}
	return batches, bytes
}

// update sets the gauges and the oldest time after lane changed; b.mu is
// held.
func (b *backlog) update(lane int) {
	var batches, bytes, oldest int64
	for _, l := range b.lanes {
		batches += l.batches
		bytes += l.bytes
		if l.oldest != 0 && (oldest == 0 || l.oldest < oldest) {
			oldest = l.oldest
		}
	}
	b.oldest.Store(oldest)
	b.m.spooledBatches.Set(float64(max(0, batches)))
	b.m.spooledBytes.Set(float64(max(0, bytes)))
	l := b.lanes[lane]
	b.m.laneBatches[lane].Set(float64(max(0, l.batches)))
	b.m.laneBytes[lane].Set(float64(max(0, l.bytes)))
}
