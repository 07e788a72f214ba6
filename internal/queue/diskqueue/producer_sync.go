package diskqueue

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

// waitSynced returns once the log is durable up to end.
//
// This is group commit. Publishers write their records under mu, then queue
// on syncMu. Whoever holds syncMu is the leader: it notes how far the log
// has been written, syncs the segment, and publishes that position as
// synced. While it syncs, other publishers keep writing and queue up behind
// it; the next leader's sync covers all of them, and those whose records it
// covered return as soon as they get syncMu. With n concurrent publishers a
// sync costs about 2/n of a sync per batch instead of one.
func (p *Producer) waitSynced(end int64) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if p.synced.Load() >= end {
		return nil
	}
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return err
	}
	target, seg, sealed := p.written, p.seg, p.sealed
	p.sealed = nil
	p.mu.Unlock()

	// Replaced segments were synced when they were replaced; the leader
	// closes them because it alone may still be using them.
	p.closeSealed(sealed)
	if err := p.sync(seg); err != nil {
		err = fmt.Errorf("cannot sync segment %s (reopen the queue to recover): %w", seg.Name(), err)
		p.mu.Lock()
		if p.err == nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages; nothing written since the last good sync can be
			// trusted, so stop accepting batches.
			p.err = err
		}
		p.mu.Unlock()
		return err
	}
	p.advance(target)
	return nil
}

// advance publishes pos as the durable end of the log. Called with syncMu held.
func (p *Producer) advance(pos int64) {
	p.synced.Store(pos)
	if err := writeHead(p.head, pos); err != nil {
		// Only a consumer in another process is affected: it waits.
		p.log.Error("cannot tell consumers about new records", "err", err)
	}
	p.notify.broadcast()
}

func (p *Producer) closeSealed(sealed []*os.File) {
	for _, f := range sealed {
		if err := f.Close(); err != nil {
			p.log.Warn("cannot close segment", "segment", f.Name(), "err", err)
		}
	}
}

// Close syncs what was written, so that Publish calls still waiting
// return nil, and releases the directory. Later calls return queue.ErrClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.err == nil && p.synced.Load() < p.written {
		if err := p.sync(p.seg); err != nil {
			p.err = fmt.Errorf("cannot sync segment %s: %w", p.seg.Name(), err)
			errs = append(errs, p.err)
		} else {
			p.advance(p.written)
		}
	}
	if p.err == nil {
		p.err = queue.ErrClosed
	}
	errs = append(errs, p.closeFiles())
	return errors.Join(errs...)
}

// closeFiles closes every file the producer holds, releasing its lock last.
func (p *Producer) closeFiles() error {
	var errs []error
	closeFile := func(f *os.File) {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cannot close %s: %w", f.Name(), err))
			}
		}
	}
	for _, f := range p.sealed {
		closeFile(f)
	}
	p.sealed = nil
	closeFile(p.seg)
	closeFile(p.head)
	closeFile(p.dirFile)
	closeFile(p.lock)
	return errors.Join(errs...)
}

// fileCommits reads the committed position from the offset file of a
// consumer in another process, at most every commitRefresh unless asked.
type fileCommits struct {
	dir    string
	pos    int64
	readAt time.Time
}

const commitRefresh = 100 * time.Millisecond

func (s *fileCommits) committed(refresh bool) (int64, error) {
	if !refresh && time.Since(s.readAt) < commitRefresh {
		return s.pos, nil
	}
	pos, err := readCommitted(s.dir)
	if err != nil {
		return s.pos, err
	}
	s.pos, s.readAt = pos, time.Now()
	return pos, nil
}

// signal is a broadcast: wait returns a channel that is closed by the next
// broadcast.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}
