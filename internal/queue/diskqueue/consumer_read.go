package diskqueue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/vigilhq/vigil/internal/queue"
)

// next returns the record at the read position if it is below head.
func (c *Consumer) next(head int64) (queue.Message, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return queue.Message{}, false, queue.ErrClosed
	}
	if c.readPos >= head {
		return queue.Message{}, false, nil
	}
	msg, end, err := c.r.read(c.readPos, head)
	if err != nil {
		return queue.Message{}, false, err
	}
	c.deleteFrom = min(c.deleteFrom, c.r.base)
	c.inflight = append(c.inflight, span{pos: msg.Position, end: end})
	c.readPos = end
	c.m.consumedMessages.Inc()
	return msg, true, nil
}

// Pending calls fn with each durable record that Fetch has yet to return,
// in order, without fetching it: Fetch returns them all the same. It
// stops at the first error fn returns and returns it. Fetch and Commit
// wait until Pending returns; it is meant for start-up, such as counting
// what a previous process left (the collector's spool does). Values are
// not shared; fn may keep them.
func (c *Consumer) Pending(fn func(queue.Message) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return queue.ErrClosed
	}
	head, err := c.heads.head()
	if err != nil {
		return err
	}
	r := segmentReader{dir: c.opts.Dir, log: c.log}
	defer r.close()
	for pos := c.readPos; pos < head; {
		msg, end, err := r.read(pos, head)
		if err != nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// segmentReader reads records from the segments of a queue directory,
// keeping the segment it read last open.
type segmentReader struct {
	dir  string
	log  *slog.Logger
	seg  *os.File // segment being read, or nil
	base int64    // position of seg's first record
	// version is seg's segment version, which lays out its records.
	version byte
}

// read decodes the record at pos, which is below head, and returns it with
// the position after it.
func (r *segmentReader) read(pos, head int64) (queue.Message, int64, error) {
	for {
		if r.seg == nil {
			if err := r.openFor(pos); err != nil {
				return queue.Message{}, 0, err
			}
		}
		off := segmentHeaderSize + pos - r.base
		var hdr [recordHeaderSize]byte
		n, err := r.seg.ReadAt(hdr[:], off)
		if n == 0 && errors.Is(err, io.EOF) {
			// This segment's records end here; the next segment starts
			// at pos.
			if err := r.open(pos, true); err != nil {
				return queue.Message{}, 0, err
			}
			continue
		}
		if n < recordHeaderSize {
			return queue.Message{}, 0, r.readError(pos, err)
		}
		length, _ := parseHeader(hdr[:])
		end := pos + recordHeaderSize + int64(length)
		if length == 0 || end > head {
			return queue.Message{}, 0, fmt.Errorf("cannot read record at position %d in segment %s: %w: length %d runs past the durable end %d",
				pos, r.seg.Name(), ErrCorrupt, length, head)
		}
		payload := make([]byte, length)
		if _, err := r.seg.ReadAt(payload, off+recordHeaderSize); err != nil {
			return queue.Message{}, 0, r.readError(pos, err)
		}
		tenant, key, value, err := decodePayload(r.version, hdr[:], payload)
		if err != nil {
			return queue.Message{}, 0, fmt.Errorf("cannot read record at position %d in segment %s: %w", pos, r.seg.Name(), err)
		}
		return queue.Message{Tenant: tenant, Key: key, Value: value, Position: pos}, end, nil
	}
}

func (r *segmentReader) readError(pos int64, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: segment ends inside the record", ErrCorrupt)
	}
	return fmt.Errorf("cannot read record at position %d in segment %s: %w", pos, r.seg.Name(), err)
}

// openFor opens the segment that holds pos.
func (r *segmentReader) openFor(pos int64) error {
	bases, err := listSegments(r.dir)
	if err != nil {
		return err
	}
	base, ok := segmentFor(bases, pos)
	if !ok {
		return fmt.Errorf("cannot read position %d: %w: no segment holds it", pos, ErrCorrupt)
	}
	return r.open(base, false)
}

// open replaces the current segment with the one starting at base. next
// says that base is where the current one ends.
func (r *segmentReader) open(base int64, next bool) error {
	path := filepath.Join(r.dir, segmentName(base))
	f, err := os.Open(path) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if next && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read position %d: %w: segment %s ends there but no segment starts there", base, ErrCorrupt, r.seg.Name())
	}
	if err != nil {
		return fmt.Errorf("cannot open segment: %w", err)
	}
	version, err := checkSegmentHeader(f)
	if err != nil {
		return errors.Join(err, f.Close())
	}
	if err := r.close(); err != nil {
		r.log.Warn("cannot close segment", "err", err)
	}
	r.seg, r.base, r.version = f, base, version
	return nil
}

// close closes the open segment, if any.
func (r *segmentReader) close() error {
	if r.seg == nil {
		return nil
	}
	err := r.seg.Close()
	r.seg = nil
	if err != nil {
		return fmt.Errorf("cannot close segment: %w", err)
	}
	return nil
}

// fileHeads reads the head file of a producer in another process.
type fileHeads struct {
	mu   sync.Mutex // Close may run during Fetch
	path string
	f    *os.File // nil until the producer has created the file
	last int64
}

func (h *fileHeads) head() (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		f, err := os.Open(h.path)
		if errors.Is(err, fs.ErrNotExist) {
			return h.last, nil // no producer has opened the directory yet
		}
		if err != nil {
			return h.last, fmt.Errorf("cannot open head file: %w", err)
		}
		h.f = f
	}
	pos, ok, err := readHead(h.f)
	if err != nil {
		return h.last, err
	}
	if ok {
		h.last = pos
	}
	return h.last, nil
}

func (h *fileHeads) changed() <-chan struct{} { return nil }

func (h *fileHeads) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}
