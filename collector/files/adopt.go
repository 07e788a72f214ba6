package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/zeebo/xxh3"
)

// candidate is a file a scan found that is not open.
type candidate struct {
	path  string
	id    fileID
	size  int64
	f     *os.File
	head  []byte // the first min(size, checkMax) bytes
	fp    fileKey
	fpLen int
	gone  bool // no longer at a watched path
	done  bool
}

// deferred is a matched file not opened yet: it had no complete first line
// at size (or size is -1: it was held as a copy of an open file).
type deferred struct {
	path string
	size int64
}

// matches reports whether c starts with e's check prefix. The prefix is
// never longer than the file was when it was taken, so a file shorter than
// it has been truncated (log files only grow) and does not match.
func (c *candidate) matches(e *entry) bool {
	return e.checkLen <= int64(len(c.head)) && xxh3.Hash(c.head[:e.checkLen]) == e.check
}

func (c *candidate) skip() {
	c.done = true
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
}

// adopt decides which identity each candidate has, in this order:
//  1. a known entry with the same fingerprint and device/inode: resume it;
//  2. a copy of an open file (same fingerprint, same leading bytes, another
//     inode): not read, it holds nothing new — until the original is
//     truncated, when step 3 makes the copy continue the original;
//  3. a released entry with the same fingerprint and check prefix, whose
//     offset fits in the file as it is after step 2: the file moved (or
//     is a copytruncate copy); resume it;
//  4. otherwise a new file, read from its start.
func (t *Tailer) adopt(ctx context.Context, cands []*candidate, found map[fileID]string, now time.Time, first bool) error {
	for _, c := range cands {
		t.fingerprintCandidate(c)
	}
	t.at(hookCandidatesRead)
	defer func() {
		for _, c := range cands {
			c.skip()
		}
	}()
	for _, c := range cands { // 1
		if c.done {
			continue
		}
		for _, e := range t.st.entries {
			if e.live || e.fp != c.fp || e.id != c.id {
				continue
			}
			if !c.matches(e) || e.offset > c.size {
				// Shorter than it was, or other content after the same
				// first line: truncated or rewritten.
				t.m.rotations.WithLabelValues("truncate").Inc()
				t.log.Info("log file was truncated while not watched; reading it from the start", "path", c.path)
				e.id = fileID{}
				t.st.dirty = true
				break
			}
			t.open(c, e)
			break
		}
	}
	for _, c := range cands { // 2
		if c.done {
			continue
		}
		for _, f := range t.files {
			if f.ent.fp != c.fp {
				continue
			}
			// c is compared with the bytes this check read and found to
			// be f's content. Reading f again for the comparison could
			// see the new content of a truncation made just after the
			// check: the copy would then look like another file, and be
			// read from 0 while f's lines up to its offset were sent.
			head, replaced, err := f.checkHead(t.scratch)
			t.at(hookOpenChecked)
			if err == nil && replaced {
				if err := t.replaced(ctx, f, now); err != nil {
					return err
				}
				break
			}
			// head is nil when f could not be checked: hold c.
			if n := min(len(head), len(c.head)); n <= c.fpLen || bytes.Equal(c.head[:n], head[:n]) {
				t.deferred[c.id] = deferred{path: c.path, size: -1}
				t.log.Debug("log file held: it starts like an open file, a copy of it or too short to tell", "path", c.path, "open", f.path)
				c.skip()
				break
			}
		}
	}
	// Steps 3 and 4 decide on the candidates as they are now, after every
	// open file was checked. A copytruncate copy found by the scan while
	// it was being written is complete once its original's truncation is
	// noticed (the copy is made first), which may be only in step 2: with
	// its size and head from the scan it would look too short to continue
	// the original (offset beyond its size, check prefix longer than its
	// head), and be read from 0 as a new file, sending the lines before
	// the offset a second time.
	for _, c := range cands {
		if !c.done {
			t.refresh(c)
		}
	}
	for _, c := range cands { // 3
		if c.done {
			continue
		}
		var best *entry
		for _, e := range t.st.entries {
			if e.live || e.fp != c.fp || e.offset > c.size || !c.matches(e) {
				continue
			}
			if best == nil || e.seen.After(best.seen) || (e.seen.Equal(best.seen) && bytes.Compare(e.key[:], best.key[:]) < 0) {
				best = e
			}
		}
		if best != nil {
			t.log.Info("log file found under another inode; resuming it", "path", c.path, "was", best.path, "offset", best.offset)
			t.open(c, best)
		}
	}
	for _, c := range cands { // 4
		if c.done {
			continue
		}
		e := &entry{key: t.st.uniqueKey(c.fp, c.id), fp: c.fp, check: xxh3.Hash(c.head),
			checkLen: int64(len(c.head)), path: c.path, id: c.id, seen: now}
		t.st.entries[e.key] = e
		t.open(c, e)
	}
	if first {
		t.recoverRotated(found)
	}
	return nil
}

// fingerprintCandidate opens c and reads its head; it marks c done when the
// file cannot be read or has no complete first line yet.
func (t *Tailer) fingerprintCandidate(c *candidate) {
	if c.size == 0 {
		c.done = true
		return
	}
	if d, ok := t.deferred[c.id]; ok && d.size == c.size {
		t.deferred[c.id] = deferred{path: c.path, size: c.size}
		c.done = true
		return
	}
	f, err := os.Open(c.path)
	if err != nil {
		t.log.Warn("cannot open log file", "path", c.path, "err", err)
		c.done = true
		return
	}
	c.f = f
	head := make([]byte, min(c.size, checkMax))
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.log.Warn("cannot read log file", "path", c.path, "err", err)
		c.skip()
		return
	}
	c.head = head[:n]
	if c.fpLen = fingerprintLen(c.head); c.fpLen == 0 {
		t.deferred[c.id] = deferred{path: c.path, size: c.size}
		t.log.Debug("log file has no complete first line yet", "path", c.path, "size", c.size)
		c.skip()
		return
	}
	c.fp = fingerprint(c.head[:c.fpLen])
}

// refresh updates c's size and head to what the file holds now. A
// candidate that shrank, or whose head is not what was read before, is
// left for the next scan.
func (t *Tailer) refresh(c *candidate) {
	fi, err := c.f.Stat()
	if err != nil {
		t.log.Warn("cannot stat log file", "path", c.path, "err", err)
		c.skip()
		return
	}
	size := fi.Size()
	switch {
	case size == c.size:
		return
	case size < c.size:
		t.log.Debug("log file shrank while it was looked at; looking at it again at the next poll", "path", c.path)
		c.skip()
		return
	}
	c.size = size
	if int64(len(c.head)) >= min(size, checkMax) {
		return
	}
	head := make([]byte, min(size, checkMax))
	n, err := c.f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.log.Warn("cannot read log file", "path", c.path, "err", err)
		c.skip()
		return
	}
	if n < len(c.head) || !bytes.Equal(head[:len(c.head)], c.head) {
		t.log.Debug("log file rewritten while it was looked at; looking at it again at the next poll", "path", c.path)
		c.skip()
		return
	}
	c.head = head[:n]
}

// open starts tailing c as e at e's offset.
func (t *Tailer) open(c *candidate, e *entry) {
	f := &file{f: c.f, id: c.id, ent: e, fpLen: c.fpLen, gone: c.gone, lastData: time.Now()}
	c.f, c.done = nil, true
	f.service = t.opts.Service
	if f.service == "" {
		f.service = ServiceFromPath(c.path)
	}
	f.ids = newIDHasher(t.opts.Host, e.key)
	if int64(len(c.head)) > e.checkLen {
		e.check, e.checkLen = xxh3.Hash(c.head), int64(len(c.head))
	}
	e.live, e.open, e.id, e.path = true, true, c.id, c.path
	f.setPath(c.path)
	f.seek(e.offset)
	t.st.dirty = true
	t.files = append(t.files, f)
	t.byID[f.id] = f
	delete(t.deferred, f.id)
	t.log.Info("tailing log file", "path", c.path, "offset", e.offset, "key", e.key)
}

// recoverRotated looks, at start-up, for files that were being tailed when
// the offsets were last saved but are no longer matched — typically rotated
// away while Vigil was down — in their old directory, and drains them from
// their saved offset.
func (t *Tailer) recoverRotated(found map[fileID]string) {
	for _, e := range t.st.entries {
		if e.live || !e.open || e.id == (fileID{}) {
			continue
		}
		if _, matched := found[e.id]; matched {
			continue
		}
		p := findInode(filepath.Dir(e.path), e.id)
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		c := &candidate{path: p, id: e.id, size: fi.Size(), gone: true}
		if t.fingerprintCandidate(c); c.done || c.fp != e.fp || !c.matches(e) || e.offset >= c.size {
			c.skip()
			e.open = false
			t.st.dirty = true
			continue
		}
		t.log.Info("draining log file rotated while not watched", "path", p, "was", e.path, "offset", e.offset)
		t.open(c, e)
	}
}
