package spool

import (
	"sync"
	"sync/atomic"
)

// backlog accounts for what is spooled and not yet forwarded, and keeps the
// gauges in step. Publish adds batches after the log accepted them,
// so the forwarder can remove a batch before it was added; the counts may
// be below zero for that moment, and the rules below keep oldest right
// through it.
type backlog struct {
	m *metrics

	mu      sync.Mutex
	batches int64
	bytes   int64
	// oldest is the enqueue time (Unix ns) of the oldest batch not yet
	// forwarded, or 0 when the spool is empty. Written under mu, read by
	// the age gauge at scrape time.
	oldest atomic.Int64
}

// added accounts for n batches of size bytes in all, published at enq.
func (b *backlog) added(n, size, enq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches += n
	b.bytes += size
	switch {
	case b.batches == 0: // the forwarder already removed them
		b.oldest.Store(0)
	case b.oldest.Load() == 0:
		b.oldest.Store(enq)
	}
	b.setGauges()
}

// fetched records that the forwarder holds the batch enqueued at enq. Every
// batch before it is forwarded, so it is the oldest one left.
func (b *backlog) fetched(enq int64) {
	b.oldest.Store(enq)
}

// removed accounts for a forwarded batch of size bytes and reports whether
// no batch is left to fetch. While batches are left the oldest is unknown
// until the next fetch, microseconds later; the forwarded batch's time
// stands for it meanwhile.
func (b *backlog) removed(size int64) (drained bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches--
	b.bytes -= size
	if b.batches == 0 {
		b.oldest.Store(0)
	}
	b.setGauges()
	return b.batches <= 0
}

// set replaces the counts, when the spool opens.
func (b *backlog) set(batches, bytes, oldest int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches, b.bytes = batches, bytes
	b.oldest.Store(oldest)
	b.setGauges()
}

// snapshot returns the counts.
func (b *backlog) snapshot() (batches, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.batches, b.bytes
}

func (b *backlog) setGauges() {
	b.m.spooledBatches.Set(float64(max(0, b.batches)))
	b.m.spooledBytes.Set(float64(max(0, b.bytes)))
}
