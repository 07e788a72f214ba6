package diskqueue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	msg, end, err := c.read(head)
	if err != nil {
		return queue.Message{}, false, err
	}
	c.inflight = append(c.inflight, span{pos: msg.Position, end: end})
	c.readPos = end
	c.m.consumedMessages.Inc()
	return msg, true, nil
}

// read decodes the record at c.readPos, which is below head.
func (c *Consumer) read(head int64) (queue.Message, int64, error) {
	pos := c.readPos
	for {
		if c.seg == nil {
			if err := c.openSegmentFor(pos); err != nil {
				return queue.Message{}, 0, err
			}
		}
		off := segmentHeaderSize + pos - c.segBase
		var hdr [recordHeaderSize]byte
		n, err := c.seg.ReadAt(hdr[:], off)
		if n == 0 && errors.Is(err, io.EOF) {
			// This segment's records end here; the next segment starts
			// at pos.
			if err := c.openSegment(pos, true); err != nil {
				return queue.Message{}, 0, err
			}
			continue
		}
		if n < recordHeaderSize {
			return queue.Message{}, 0, c.readError(pos, err)
		}
		length, _ := parseHeader(hdr[:])
		end := pos + recordHeaderSize + int64(length)
		if length == 0 || end > head {
			return queue.Message{}, 0, fmt.Errorf("cannot read record at position %d in segment %s: %w: length %d runs past the durable end %d",
				pos, c.seg.Name(), ErrCorrupt, length, head)
		}
		payload := make([]byte, length)
		if _, err := c.seg.ReadAt(payload, off+recordHeaderSize); err != nil {
			return queue.Message{}, 0, c.readError(pos, err)
		}
		key, value, err := decodePayload(hdr[:], payload)
		if err != nil {
			return queue.Message{}, 0, fmt.Errorf("cannot read record at position %d in segment %s: %w", pos, c.seg.Name(), err)
		}
		return queue.Message{Key: key, Value: value, Position: pos}, end, nil
	}
}

func (c *Consumer) readError(pos int64, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: segment ends inside the record", ErrCorrupt)
	}
	return fmt.Errorf("cannot read record at position %d in segment %s: %w", pos, c.seg.Name(), err)
}

// openSegmentFor opens the segment that holds pos.
func (c *Consumer) openSegmentFor(pos int64) error {
	bases, err := listSegments(c.opts.Dir)
	if err != nil {
		return err
	}
	base, ok := segmentFor(bases, pos)
	if !ok {
		return fmt.Errorf("cannot read position %d: %w: no segment holds it", pos, ErrCorrupt)
	}
	return c.openSegment(base, false)
}

// openSegment replaces the current segment with the one starting at base.
// next says that base is where the current one ends.
func (c *Consumer) openSegment(base int64, next bool) error {
	path := filepath.Join(c.opts.Dir, segmentName(base))
	f, err := os.Open(path)
	if next && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read position %d: %w: segment %s ends there but no segment starts there", base, ErrCorrupt, c.seg.Name())
	}
	if err != nil {
		return fmt.Errorf("cannot open segment: %w", err)
	}
	if err := checkSegmentHeader(f); err != nil {
		return errors.Join(err, f.Close())
	}
	if c.seg != nil {
		if err := c.seg.Close(); err != nil {
			c.log.Warn("cannot close segment", "segment", c.seg.Name(), "err", err)
		}
	}
	c.seg, c.segBase = f, base
	c.deleteFrom = min(c.deleteFrom, base)
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
