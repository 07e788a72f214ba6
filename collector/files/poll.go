package files

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// poll runs every PollInterval: it checks open files for truncation and
// replaced content, rescans the patterns, closes drained rotated files and
// persists offsets. It returns an error only when ctx ended during a flush.
func (t *Tailer) poll(ctx context.Context, now time.Time, first bool) error {
	// Hand over what was read, so that entries released below carry
	// acknowledged offsets.
	if err := t.flush(ctx); err != nil {
		return err
	}
	for _, f := range slices.Clone(t.files) {
		checkLen := f.ent.checkLen
		replaced, err := f.checkContent(t.scratch)
		if err != nil {
			t.log.Warn("cannot check log file", "path", f.path, "err", err)
			continue
		}
		if replaced {
			if err := t.replaced(ctx, f, now); err != nil {
				return err
			}
			continue
		}
		if f.ent.checkLen != checkLen {
			t.st.dirty = true
		}
	}
	if err := t.scan(ctx, now, first); err != nil {
		return err
	}
	for _, f := range slices.Clone(t.files) {
		if f.gone && f.eof && now.Sub(f.lastData) >= t.drainGrace {
			if err := t.drained(ctx, f, now); err != nil {
				return err
			}
		}
	}
	t.st.expire(now)
	t.commit(now)
	for _, f := range t.files {
		f.eof = false
	}
	t.m.watched.Set(float64(len(t.files)))
	return nil
}

// replaced handles a file whose content changed in place (copytruncate, or
// truncated and rewritten): the old content's identity is released at its
// acknowledged offset, where a copy of it can pick it up; the file is
// closed and found again by the scan as new content, read from 0.
func (t *Tailer) replaced(ctx context.Context, f *file, now time.Time) error {
	t.m.rotations.WithLabelValues("truncate").Inc()
	t.log.Info("log file truncated or replaced in place; reading its new content from the start",
		"path", f.path, "offset", f.consumed())
	// The pending multiline record is complete: its content is final.
	t.emitPending(f)
	if err := t.flush(ctx); err != nil {
		return err
	}
	t.commit(now)
	t.release(f, now, true)
	return nil
}

// drained closes a rotated or deleted file that has been at its end for
// the drain grace period, after shipping its last records.
func (t *Tailer) drained(ctx context.Context, f *file, now time.Time) error {
	t.emitTail(f, now)
	if err := t.flush(ctx); err != nil {
		return err
	}
	t.commit(now)
	t.log.Info("rotated log file drained and closed", "path", f.path, "offset", f.consumed())
	t.release(f, now, false)
	return nil
}

// release unbinds f's entry and closes f. contentGone says the entry's
// content no longer lives at f's inode.
func (t *Tailer) release(f *file, now time.Time, contentGone bool) {
	e := f.ent
	e.offset = f.consumed()
	e.live, e.open, e.seen = false, false, now
	if contentGone {
		e.id = fileID{}
	}
	t.st.dirty = true
	t.remove(f)
}

// scan matches the patterns, follows open files to their current paths,
// marks files that left the patterns for draining and opens new ones.
func (t *Tailer) scan(ctx context.Context, now time.Time, first bool) error {
	found := map[fileID]string{}
	var cands []*candidate
	for _, p := range t.expand() {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		id, _ := fileIdentity(fi, p)
		if _, dup := found[id]; dup {
			continue
		}
		found[id] = p
		if f := t.byID[id]; f != nil {
			if f.path != p {
				if !f.gone {
					t.m.rotations.WithLabelValues("rename").Inc()
				}
				t.log.Info("log file renamed", "from", f.path, "to", p)
				f.setPath(p)
				t.st.dirty = true
			}
			f.gone = false
			continue
		}
		cands = append(cands, &candidate{path: p, id: id, size: fi.Size()})
	}
	// A file seen but not opened yet (no complete first line, or held as a
	// copy) that left the patterns is looked for where it was, so a file
	// rotated away before it was opened is still read.
	for id, d := range t.deferred {
		if _, ok := found[id]; ok {
			continue
		}
		p := findInode(filepath.Dir(d.path), id)
		fi, err := os.Stat(p)
		if p == "" || err != nil {
			t.log.Debug("log file gone before it was opened", "path", d.path)
			delete(t.deferred, id)
			continue
		}
		t.log.Debug("log file moved before it was opened", "path", d.path, "now", p)
		cands = append(cands, &candidate{path: p, id: id, size: fi.Size(), gone: true})
	}
	for _, f := range t.files {
		if _, ok := found[f.id]; ok || f.gone {
			continue
		}
		f.gone = true
		f.lastData = now // the writer may still be switching: give it the grace period
		fi, err := f.f.Stat()
		if err == nil {
			if _, nlink := fileIdentity(fi, f.path); nlink == 0 {
				t.log.Info("log file deleted; draining it", "path", f.path)
				continue
			}
		}
		t.m.rotations.WithLabelValues("rename").Inc()
		old := f.path
		if p := findInode(filepath.Dir(f.path), f.id); p != "" {
			f.setPath(p)
			t.st.dirty = true
		}
		t.log.Info("log file rotated away; draining it", "path", old, "now", f.path)
	}
	return t.adopt(ctx, cands, found, now, first)
}

// expand returns the files matching the patterns, sorted, without duplicates.
func (t *Tailer) expand() []string {
	var out []string
	for _, p := range t.opts.Patterns {
		m, err := glob(p)
		if err != nil {
			t.log.Warn("cannot expand file pattern", "pattern", p, "err", err)
		}
		out = append(out, m...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// findInode returns the path of the file with id in dir, or "".
func findInode(dir string, id fileID) string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if x, _ := fileIdentity(fi, p); x == id {
			return p
		}
	}
	return ""
}
