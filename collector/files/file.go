package files

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/model"
)

const (
	attrFilePath = "log.file.path"
	readChunk    = 64 << 10
)

// file is one open file being tailed.
//
// Offsets: buf[r:w] holds bytes read but not yet turned into lines; buf[r]
// is at file offset bufOff. lineEnd is the offset just after the last line
// handled (or the start of an overlong line still being skipped). Every byte
// before consumed() is in a batch already handed over or was discarded.
type file struct {
	f       *os.File
	id      fileID
	ent     *entry
	fpLen   int
	path    string
	service string
	attrs   []model.Attr // shared by this file's records; len == cap
	ids     idHasher

	buf      []byte
	r, w     int
	bufOff   int64
	lineEnd  int64
	skipping bool
	pend     pending

	eof      bool      // the last read reached the end; wait for the next poll
	lastData time.Time // last read that returned data
	gone     bool      // no longer at a watched path: drain, then close
}

// pending is a multiline record waiting for its continuation lines.
type pending struct {
	active    bool
	start     int64
	msg       []byte
	truncated bool
	last      time.Time // when the last line was added
	ts        int64     // when the first line was read, Unix ns
}

func (f *file) readPos() int64 { return f.bufOff + int64(f.w-f.r) }

func (f *file) consumed() int64 {
	if f.pend.active {
		return f.pend.start
	}
	return f.lineEnd
}

func (f *file) setPath(p string) {
	f.path = p
	f.attrs = []model.Attr{{Key: attrFilePath, Value: p}}
	if f.ent.path != p {
		f.ent.path = p
	}
}

// seek positions f at offset with nothing buffered.
func (f *file) seek(offset int64) {
	f.r, f.w = 0, 0
	f.bufOff, f.lineEnd = offset, offset
	f.skipping = false
	f.pend.active = false
}

func (f *file) discard(n int) {
	f.r += n
	f.bufOff += int64(n)
}

// read appends the next chunk of the file to buf. It returns 0 at the end.
func (f *file) read(maxLine int) (int, error) {
	if f.buf == nil {
		f.buf = make([]byte, maxLine+readChunk)
	}
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	n, err := f.f.ReadAt(f.buf[f.w:], f.readPos())
	f.w += n
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("cannot read %s: %w", f.path, err)
	}
	return n, nil
}

// checkContent reports whether the content f was reading is still there:
// not truncated below what was read, the same fingerprint and the same
// check prefix. It extends the entry's check prefix as the file grows.
// scratch must hold checkMax bytes.
func (f *file) checkContent(scratch []byte) (replaced bool, err error) {
	_, replaced, err = f.checkHead(scratch)
	return replaced, err
}

// checkHead is checkContent that also returns, when the content is still
// there, the file's first min(size, checkMax) bytes as read for the check,
// in scratch. Only these bytes are known to be f's content: a later read
// may already see what was written after a truncation.
func (f *file) checkHead(scratch []byte) (head []byte, replaced bool, err error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("cannot stat %s: %w", f.path, err)
	}
	size := fi.Size()
	if size < f.readPos() || size < f.ent.checkLen {
		return nil, true, nil
	}
	n := int(min(size, checkMax))
	head = scratch[:n]
	if m, err := f.f.ReadAt(head, 0); m < n {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, fmt.Errorf("cannot read %s: %w", f.path, err)
		}
		return nil, true, nil // shrank since the stat
	}
	if fingerprint(head[:f.fpLen]) != f.ent.fp {
		return nil, true, nil
	}
	if xxh3.Hash(head[:f.ent.checkLen]) != f.ent.check {
		return nil, true, nil
	}
	if int64(n) > f.ent.checkLen {
		f.ent.check, f.ent.checkLen = xxh3.Hash(head), int64(n)
	}
	return head, false, nil
}

func (f *file) close() error {
	f.buf = nil
	return f.f.Close()
}
