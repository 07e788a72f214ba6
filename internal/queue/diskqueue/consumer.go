package diskqueue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
)

var _ queue.Consumer = (*Consumer)(nil)

// Consumer reads a queue directory in order and records progress. Fetch and
// Commit are meant to be called from one goroutine; Close may be called
// from any goroutine and makes a blocked Fetch return queue.ErrClosed.
type Consumer struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	sync    syncFunc
	dirFile *os.File
	lock    *os.File
	heads   headSource
	done    chan struct{} // closed by Close

	// committed is the durable committed position; an in-process producer
	// reads it to enforce its bound.
	committed atomic.Int64

	mu         sync.Mutex // guards the fields below
	closed     bool
	r          segmentReader
	readPos    int64  // position of the next record to return
	inflight   []span // fetched, not yet committed, ascending
	deleteFrom int64  // no segment can be deleted until committed reaches this
}

// span is the extent of one fetched record.
type span struct{ pos, end int64 }

// headSource reports how far the log is durable.
type headSource interface {
	// head returns the position up to which records are durable.
	head() (int64, error)
	// changed returns a channel closed when head may have advanced, or
	// nil when the caller must poll.
	changed() <-chan struct{}
	close() error
}

// pollInterval is how often a consumer in another process than its
// producer looks for new records.
const pollInterval = 50 * time.Millisecond

// OpenConsumer opens dir for consuming only, for a producer opened with
// OpenProducer, usually in another process. It fails with an error wrapping
// ErrLocked if another consumer holds the directory.
func OpenConsumer(opts Options) (*Consumer, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return openConsumer(opts, m, &fileHeads{path: filepath.Join(opts.Dir, headFileName)})
}

func openConsumer(opts Options, m *metrics, heads headSource) (*Consumer, error) {
	dirFile, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, errors.Join(err, heads.close())
	}
	lock, err := lockFile(filepath.Join(opts.Dir, consumerLockName), "consumer")
	if err != nil {
		return nil, errors.Join(err, dirFile.Close(), heads.close())
	}
	c := &Consumer{
		opts:    opts,
		log:     opts.Logger.With("role", "consumer"),
		m:       m,
		sync:    m.timedSync("consumer"),
		dirFile: dirFile,
		lock:    lock,
		heads:   heads,
		done:    make(chan struct{}),
	}
	c.r = segmentReader{dir: opts.Dir, log: c.log}
	if err := c.start(); err != nil {
		return nil, errors.Join(err, c.closeFiles())
	}
	return c, nil
}

// start positions the consumer at the committed offset and deletes
// segments that were consumed before a crash.
func (c *Consumer) start() error {
	dir := c.opts.Dir
	if err := os.Remove(filepath.Join(dir, offsetTmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove leftover offset file: %w", err)
	}
	committed, err := readCommitted(dir)
	if err != nil {
		return err
	}
	bases, err := listSegments(dir)
	if err != nil {
		return err
	}
	if len(bases) > 0 && committed < bases[0] {
		c.log.Warn("records between the committed offset and the first segment are missing; skipping them",
			"committed", committed, "first_segment", bases[0])
		committed = bases[0]
		if err := writeCommitted(dir, c.dirFile, committed, c.sync); err != nil {
			return err
		}
	}
	c.committed.Store(committed)
	c.readPos = committed
	c.deleteFrom = 0
	c.deleteConsumed(committed)
	if head, err := c.heads.head(); err == nil && head >= committed {
		c.m.unconsumedBytes.Set(float64(head - committed))
	}
	c.log.Info("opened queue for consuming", "committed", committed)
	return nil
}

// TryFetch returns the next message if one is available now, without
// waiting; ok is false when there is none yet.
func (c *Consumer) TryFetch() (m queue.Message, ok bool, err error) {
	select {
	case <-c.done:
		return queue.Message{}, false, queue.ErrClosed
	default:
	}
	head, err := c.heads.head()
	if err != nil {
		return queue.Message{}, false, err
	}
	return c.next(head)
}

// Fetch returns the next record. It blocks until one is durable, ctx ends
// or the consumer is closed. The returned Value is not shared with anyone.
func (c *Consumer) Fetch(ctx context.Context) (queue.Message, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return queue.Message{}, err
		}
		// Take the channel before reading head, so that an advance
		// between the two is not missed.
		wake := c.heads.changed()
		head, err := c.heads.head()
		if err != nil {
			return queue.Message{}, err
		}
		msg, ok, err := c.next(head)
		if err != nil || ok {
			return msg, err
		}
		var tick <-chan time.Time
		if wake == nil {
			if timer == nil {
				timer = time.NewTimer(pollInterval)
			} else {
				timer.Reset(pollInterval)
			}
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return queue.Message{}, ctx.Err()
		case <-c.done:
			return queue.Message{}, queue.ErrClosed
		case <-wake:
		case <-tick:
		}
	}
}

// Commit durably records that m and every message fetched before it are
// processed. Committing a message again, or one older than the committed
// position, does nothing. Segments whose records are all committed are
// deleted.
func (c *Consumer) Commit(ctx context.Context, m queue.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return queue.ErrClosed
	}
	i, found := slices.BinarySearchFunc(c.inflight, m.Position, func(s span, pos int64) int {
		return cmp.Compare(s.pos, pos)
	})
	if !found {
		if m.Position < c.committed.Load() {
			return nil
		}
		return fmt.Errorf("cannot commit position %d: it was not returned by Fetch of this consumer", m.Position)
	}
	end := c.inflight[i].end
	if err := writeCommitted(c.opts.Dir, c.dirFile, end, c.sync); err != nil {
		return fmt.Errorf("cannot commit position %d: %w", m.Position, err)
	}
	prev := c.committed.Swap(end)
	c.inflight = slices.Delete(c.inflight, 0, i+1)
	c.m.committedBytes.Add(float64(end - prev))
	if head, err := c.heads.head(); err == nil && head >= end {
		c.m.unconsumedBytes.Set(float64(head - end))
	}
	c.deleteConsumed(end)
	return nil
}

// deleteConsumed removes the segments that hold only records before
// committed: those followed by a segment starting at or before it.
// Failures are logged; the next commit tries again.
func (c *Consumer) deleteConsumed(committed int64) {
	if committed < c.deleteFrom {
		return
	}
	bases, err := listSegments(c.opts.Dir)
	if err != nil {
		c.log.Warn("cannot delete consumed segments", "err", err)
		return
	}
	i := 0
	for ; i+1 < len(bases) && bases[i+1] <= committed; i++ {
		path := filepath.Join(c.opts.Dir, segmentName(bases[i]))
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cannot delete consumed segment", "segment", path, "err", err)
			return
		}
		c.log.Debug("deleted consumed segment", "segment", path)
	}
	c.deleteFrom = math.MaxInt64
	if i+1 < len(bases) {
		c.deleteFrom = bases[i+1]
	}
}

// Close releases the directory. A Fetch blocked in another goroutine
// returns queue.ErrClosed.
func (c *Consumer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	return c.closeFiles()
}

func (c *Consumer) closeFiles() error {
	var errs []error
	if err := c.r.close(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []*os.File{c.dirFile, c.lock} {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cannot close %s: %w", f.Name(), err))
			}
		}
	}
	return errors.Join(append(errs, c.heads.close())...)
}
