package files

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/fsutil"
)

const (
	stateFileName  = "offsets.json"
	stateVersion   = 1
	forgetAfter    = time.Hour      // an entry whose file is gone this long is dropped
	retiredFor     = 24 * time.Hour // a dropped key is not handed out again for this long
	retiredMaxKeys = 4096
)

// fileID is a device/inode pair: where a file is, a hint to its identity.
type fileID struct{ dev, ino uint64 }

// entry is the durable state of one file identity.
type entry struct {
	key      fileKey // hashed into record ids
	fp       fileKey // fingerprint of the content
	check    uint64  // xxh3 of the first checkLen bytes
	checkLen int64
	offset   int64 // every byte before it is in a batch the Sink accepted
	path     string
	id       fileID // zero once the content left its inode (truncated)
	open     bool   // watched (not drained) when last saved
	seen     time.Time

	live bool // bound to an open file of this process
}

// state is the set of entries and its offsets file.
type state struct {
	path    string
	entries map[fileKey]*entry
	retired map[fileKey]time.Time
	dirty   bool
}

type stateJSON struct {
	Version int              `json:"version"`
	Files   []stateEntryJSON `json:"files"`
	Retired []retiredJSON    `json:"retired,omitempty"`
}

type stateEntryJSON struct {
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Check       string    `json:"check"`
	CheckLen    int64     `json:"check_len"`
	Offset      int64     `json:"offset"`
	Path        string    `json:"path"`
	Dev         uint64    `json:"dev"`
	Inode       uint64    `json:"inode"`
	Open        bool      `json:"open"`
	Seen        time.Time `json:"seen"`
}

type retiredJSON struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

// loadState reads the offsets file in dir; a missing file is an empty state.
func loadState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create state directory %s: %w", dir, err)
	}
	s := &state{
		path:    filepath.Join(dir, stateFileName),
		entries: map[fileKey]*entry{},
		retired: map[fileKey]time.Time{},
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read offsets file: %w", err)
	}
	var sj stateJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		return nil, fmt.Errorf("cannot parse offsets file %s: %w; move it away to start over (files are then read again from their beginning)", s.path, err)
	}
	if sj.Version != stateVersion {
		return nil, fmt.Errorf("offsets file %s: version %d, want %d", s.path, sj.Version, stateVersion)
	}
	for i, ej := range sj.Files {
		e := &entry{offset: ej.Offset, checkLen: ej.CheckLen, path: ej.Path,
			id: fileID{ej.Dev, ej.Inode}, open: ej.Open, seen: ej.Seen}
		var err error
		if e.key, err = parseKey(ej.Key); err == nil {
			if e.fp, err = parseKey(ej.Fingerprint); err == nil {
				var c []byte
				if c, err = hex.DecodeString(ej.Check); err == nil && len(c) == 8 {
					e.check = beUint64(c)
				} else if err == nil {
					err = errors.New("check must be 16 hex digits")
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("offsets file %s: file %d (%s): %w", s.path, i, ej.Path, err)
		}
		s.entries[e.key] = e
	}
	for _, r := range sj.Retired {
		if k, err := parseKey(r.Key); err == nil {
			s.retired[k] = r.At
		}
	}
	return s, nil
}

func parseKey(s string) (fileKey, error) {
	var k fileKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("key %q: want 32 hex digits", s)
	}
	copy(k[:], b)
	return k, nil
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// uniqueKey returns the key for a new identity with fingerprint fp at id:
// fp itself unless an entry or a recently retired key uses it already.
func (s *state) uniqueKey(fp fileKey, id fileID) fileKey {
	k := fp
	for s.used(k) {
		k = deriveKey(k, id)
	}
	return k
}

func (s *state) used(k fileKey) bool {
	if _, ok := s.entries[k]; ok {
		return true
	}
	_, ok := s.retired[k]
	return ok
}

// expire drops entries whose file has been gone for forgetAfter and
// retired keys older than retiredFor.
func (s *state) expire(now time.Time) {
	for k, e := range s.entries {
		if !e.live && now.Sub(e.seen) > forgetAfter {
			delete(s.entries, k)
			s.retired[k] = now
			s.dirty = true
		}
	}
	for k, at := range s.retired {
		if now.Sub(at) > retiredFor {
			delete(s.retired, k)
			s.dirty = true
		}
	}
	if n := len(s.retired) - retiredMaxKeys; n > 0 {
		type kv struct {
			k  fileKey
			at time.Time
		}
		all := make([]kv, 0, len(s.retired))
		for k, at := range s.retired {
			all = append(all, kv{k, at})
		}
		slices.SortFunc(all, func(a, b kv) int { return a.at.Compare(b.at) })
		for _, x := range all[:n] {
			delete(s.retired, x.k)
		}
		s.dirty = true
	}
}

// save writes the offsets file atomically: a temporary file is written and
// synced, renamed over the old one, and the directory is synced.
func (s *state) save(now time.Time) error {
	sj := stateJSON{Version: stateVersion, Files: make([]stateEntryJSON, 0, len(s.entries))}
	for _, e := range s.entries {
		if e.live {
			e.seen = now
		}
		var c [8]byte
		for i := range c {
			c[i] = byte(e.check >> (56 - 8*i)) // #nosec G115 -- taking the bytes of a uint64 one by one
		}
		sj.Files = append(sj.Files, stateEntryJSON{
			Key: e.key.String(), Fingerprint: e.fp.String(), Check: hex.EncodeToString(c[:]),
			CheckLen: e.checkLen, Offset: e.offset, Path: e.path, Dev: e.id.dev, Inode: e.id.ino,
			Open: e.open, Seen: e.seen.UTC(),
		})
	}
	slices.SortFunc(sj.Files, func(a, b stateEntryJSON) int {
		if a.Path != b.Path {
			if a.Path < b.Path {
				return -1
			}
			return 1
		}
		if a.Key < b.Key {
			return -1
		}
		return 1
	})
	for k, at := range s.retired {
		sj.Retired = append(sj.Retired, retiredJSON{Key: k.String(), At: at.UTC()})
	}
	slices.SortFunc(sj.Retired, func(a, b retiredJSON) int { return a.At.Compare(b.At) })
	b, err := json.MarshalIndent(sj, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode offsets: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	s.dirty = false
	return nil
}
