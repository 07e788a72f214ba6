package files

import (
	"bytes"
	"time"
	"unsafe"

	"github.com/vigilhq/vigil/internal/model"
)

// batch collects records for the Sink. Messages are appended to one arena
// per batch and become substrings of it when the batch is handed over, so a
// batch costs one string allocation instead of one per line. A used arena is
// never written again: the strings stay valid after the Sink returns.
type batch struct {
	recs  []model.LogRecord
	spans []span
	arena []byte
	first time.Time // when the first record was added
}

type span struct{ off, n int }

// batchMaxBytes bounds the message bytes of a batch, whatever BatchMaxLines.
const batchMaxBytes = 8 << 20

func (b *batch) full(maxLines int) bool {
	return len(b.recs) >= maxLines || len(b.arena) >= batchMaxBytes
}

// seal sets the records' messages; it is idempotent.
func (b *batch) seal() {
	if len(b.arena) == 0 {
		return
	}
	s := unsafe.String(unsafe.SliceData(b.arena), len(b.arena)) // #nosec G103 -- the arena is sealed: never written again while the messages live
	for i, sp := range b.spans {
		b.recs[i].Message = s[sp.off : sp.off+sp.n]
	}
}

// reset empties b for the next batch with a fresh arena.
func (b *batch) reset() {
	clear(b.recs)
	b.recs, b.spans = b.recs[:0], b.spans[:0]
	b.arena = make([]byte, 0, min(cap(b.arena), batchMaxBytes+64<<10))
}

// emit adds the record starting at offset start of f to the batch.
func (t *Tailer) emit(f *file, start int64, msg []byte, truncated bool, now int64) {
	b := &t.batch
	if len(b.recs) == 0 {
		b.first = time.Now()
	}
	b.spans = append(b.spans, span{off: len(b.arena), n: len(msg)})
	b.arena = append(b.arena, msg...)
	b.recs = append(b.recs, model.LogRecord{
		ID:                f.ids.id(start),
		Timestamp:         now,
		ObservedTimestamp: now,
		Service:           f.service,
		Host:              t.opts.Host,
		Source:            "file",
		Attributes:        f.attrs,
		Truncated:         truncated,
	})
}

// processBuffered turns the complete lines in f's buffer into records. It
// stops early, returning true, when the batch is full.
func (t *Tailer) processBuffered(f *file, now time.Time) (full bool) {
	max := t.opts.MaxLineBytes
	ns := now.UnixNano()
	lines := 0
	defer func() { t.m.linesRead.Add(float64(lines)) }()
	for {
		if t.batch.full(t.opts.BatchMaxLines) {
			return true
		}
		data := f.buf[f.r:f.w]
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if f.skipping {
				f.discard(len(data))
			} else if len(data) >= max {
				// Overlong and no end in sight: ship the head now, skip the rest.
				t.m.truncated.Inc()
				t.handleLine(f, data[:max], f.bufOff, -1, true, now, ns)
				f.skipping = true
				f.discard(len(data))
			}
			return false
		}
		line, start := data[:i], f.bufOff
		end := start + int64(i) + 1
		f.discard(i + 1)
		lines++
		if f.skipping {
			f.skipping = false
			f.lineEnd = end
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		truncated := false
		if len(line) > max {
			line, truncated = line[:max], true
			t.m.truncated.Inc()
		}
		t.handleLine(f, line, start, end, truncated, now, ns)
	}
}

// handleLine handles one line starting at start; end is the offset after its
// newline, or -1 while the rest of an overlong line is still unread.
// Empty lines are not shipped; in multiline mode they continue a record.
func (t *Tailer) handleLine(f *file, line []byte, start, end int64, truncated bool, now time.Time, ns int64) {
	if end >= 0 {
		f.lineEnd = end
	}
	if t.multiline == nil {
		if len(line) > 0 || truncated {
			t.emit(f, start, line, truncated, ns)
		}
		return
	}
	p := &f.pend
	if p.active && !t.multiline.Match(line) {
		p.last = now
		if p.truncated {
			return
		}
		max := t.opts.MaxLineBytes
		if room := max - len(p.msg) - 1; room < len(line) {
			if room > 0 {
				p.msg = append(append(p.msg, '\n'), line[:room]...)
			}
			p.truncated = true
			t.m.truncated.Inc()
			return
		}
		p.msg = append(append(p.msg, '\n'), line...)
		p.truncated = p.truncated || truncated
		return
	}
	if p.active {
		t.emitPending(f)
	}
	if len(line) == 0 && !truncated {
		return
	}
	*p = pending{active: true, start: start, msg: append(p.msg[:0], line...), truncated: truncated, last: now, ts: ns}
}

// emitPending ships f's pending multiline record, timestamped when its
// first line was read.
func (t *Tailer) emitPending(f *file) {
	p := &f.pend
	if !p.active {
		return
	}
	p.active = false
	t.emit(f, p.start, p.msg, p.truncated, p.ts)
}

// emitTail ships what is left of a file that will not grow any more (it
// was rotated away or deleted and drained): the pending multiline record
// and an unterminated last line.
func (t *Tailer) emitTail(f *file, now time.Time) {
	ns := now.UnixNano()
	if f.skipping {
		f.discard(f.w - f.r)
		f.lineEnd = f.readPos()
		f.skipping = false
	}
	if f.r < f.w {
		line, start := f.buf[f.r:f.w], f.bufOff
		end := f.readPos()
		f.discard(len(line))
		t.m.linesRead.Inc()
		if n := len(line); line[n-1] == '\r' {
			line = line[:n-1]
		}
		truncated := false
		if len(line) > t.opts.MaxLineBytes {
			line, truncated = line[:t.opts.MaxLineBytes], true
			t.m.truncated.Inc()
		}
		t.handleLine(f, line, start, end, truncated, now, ns)
	}
	t.emitPending(f)
}
