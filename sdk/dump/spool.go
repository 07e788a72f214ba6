package dump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The spool keeps each report as one file, named
// <20-digit Unix ns>-<event id>.envelope, holding the Sentry envelope as
// it is sent. A file is written under a ".tmp" name, fsynced and renamed,
// so a file with the final name is always complete. Names sort by age.
const (
	spoolExt = ".envelope"
	tmpExt   = ".tmp"
)

// errTooLarge is returned by spool.add for a report larger than the
// whole spool.
var errTooLarge = errors.New("report larger than the spool's MaxSpoolBytes")

type spoolEntry struct {
	name string
	size int64
}

type spool struct {
	dir      string
	maxBytes int64

	mu      sync.Mutex
	entries []spoolEntry // oldest first
	bytes   int64
	seq     int64         // last name's time, kept increasing
	changed chan struct{} // closed and replaced on every change
}

// openSpool lists the reports a previous process left and removes
// incomplete writes.
func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool directory %s: %w", dir, err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, changed: make(chan struct{})}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read spool directory %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, tmpExt):
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, spoolExt) && de.Type().IsRegular():
			fi, err := de.Info()
			if err != nil {
				continue
			}
			s.entries = append(s.entries, spoolEntry{name: name, size: fi.Size()})
			s.bytes += fi.Size()
		}
	}
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].name < s.entries[j].name })
	return s, nil
}

// add writes a report durably and returns the reports dropped to stay
// within maxBytes, oldest first.
func (s *spool) add(eventID string, data []byte) (dropped int, err error) {
	size := int64(len(data))
	if size > s.maxBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, size, s.maxBytes)
	}
	s.mu.Lock()
	now := time.Now().UnixNano()
	if now <= s.seq {
		now = s.seq + 1
	}
	s.seq = now
	s.mu.Unlock()
	name := fmt.Sprintf("%020d-%s%s", now, eventID, spoolExt)
	if err := writeFileSync(s.dir, name, data); err != nil {
		return 0, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, spoolEntry{name: name, size: size})
	// Another process sharing the directory may have written an older
	// name since; keep the order.
	if n := len(s.entries); n > 1 && s.entries[n-2].name > name {
		sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].name < s.entries[j].name })
	}
	s.bytes += size
	for s.bytes > s.maxBytes && len(s.entries) > 1 {
		old := s.entries[0]
		if old.name == name {
			break
		}
		_ = os.Remove(filepath.Join(s.dir, old.name))
		s.entries = s.entries[1:]
		s.bytes -= old.size
		dropped++
	}
	s.signal()
	return dropped, nil
}

// writeFileSync writes dir/name atomically and durably.
func writeFileSync(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- under the spool directory the application configured
	if err != nil {
		return fmt.Errorf("cannot create spool file %s: %w", tmp, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(dir, name))
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot write spool file %s: %w", tmp, werr)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable; where directories cannot be synced
// (Windows) it does nothing.
func syncDir(dir string) {
	d, err := os.Open(dir) // #nosec G304 -- under the spool directory the application configured
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// oldest returns the oldest report.
func (s *spool) oldest() (spoolEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return spoolEntry{}, false
	}
	return s.entries[0], true
}

func (s *spool) read(e spoolEntry) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, e.name))
}

// remove deletes a report once it was delivered (or rejected). It is not
// an error when the file is already gone: a full spool evicted it, or
// another process sharing the directory delivered it.
func (s *spool) remove(e spoolEntry) error {
	err := os.Remove(filepath.Join(s.dir, e.name))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.entries {
		if x.name == e.name {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			s.bytes -= x.size
			break
		}
	}
	s.signal()
	if err != nil {
		return fmt.Errorf("cannot remove delivered report %s: %w", e.name, err)
	}
	return nil
}

// stats returns the number and size of the reports waiting.
func (s *spool) stats() (n int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.bytes
}

// wait returns a channel closed at the next change.
func (s *spool) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *spool) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}
