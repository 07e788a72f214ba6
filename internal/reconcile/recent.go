package reconcile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vigilhq/vigil/internal/model"
)

// recentIDs remembers the ids of the last n records counted, in memory and
// in a fixed-size ring file beside the ledger, so that a record sent again
// after a crash (a file re-read from its last persisted offset, a client
// retrying a request) is not counted twice. Redelivery only ever repeats
// recent records, so a bounded window suffices.
//
// Ring file layout: an 8-byte little-endian head (the next slot), then n
// 8-byte slots holding the low 64 bits of record ids (0 = empty). Writes go
// to the page cache; a process crash loses none of them.
type recentIDs struct {
	f    *os.File
	n    int
	head int
	// added counts slots filled since the last persist.
	added int
	set   map[uint64]struct{}
	ring  []uint64
	buf   [8]byte
}

func openRecentIDs(path string, n int) (*recentIDs, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	r := &recentIDs{f: f, n: n, set: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
	data := make([]byte, 8*(n+1))
	m, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.Join(fmt.Errorf("cannot read %s: %w", path, err), f.Close())
	}
	if m >= 8 {
		r.head = int(binary.LittleEndian.Uint64(data) % uint64(n)) // #nosec G115 -- the remainder is below n, an int
	}
	for i := 0; i < n && 8*(i+2) <= m; i++ {
		if k := binary.LittleEndian.Uint64(data[8*(i+1):]); k != 0 {
			r.ring[i] = k
			r.set[k] = struct{}{}
		}
	}
	return r, nil
}

func idKey(id model.RecordID) uint64 {
	k := binary.LittleEndian.Uint64(id[8:])
	if k == 0 {
		k = 1
	}
	return k
}

// add reports whether id is new, remembering it if so. The ring file is
// written by persist, once per batch.
func (r *recentIDs) add(id model.RecordID) bool {
	k := idKey(id)
	if _, ok := r.set[k]; ok {
		return false
	}
	if old := r.ring[r.head]; old != 0 {
		delete(r.set, old)
	}
	r.ring[r.head] = k
	r.set[k] = struct{}{}
	r.head = (r.head + 1) % r.n
	r.added++
	return true
}

// persist writes the slots filled since the last persist and the head.
func (r *recentIDs) persist() error {
	if r.added == 0 {
		return nil
	}
	n := min(r.added, r.n)
	first := (r.head - n + r.n) % r.n
	write := func(from, to int) error { // slots [from, to)
		b := make([]byte, 8*(to-from))
		for i := from; i < to; i++ {
			binary.LittleEndian.PutUint64(b[8*(i-from):], r.ring[i])
		}
		_, err := r.f.WriteAt(b, int64(8*(from+1)))
		return err
	}
	var err error
	if first+n <= r.n {
		err = write(first, first+n)
	} else {
		err = errors.Join(write(first, r.n), write(0, first+n-r.n))
	}
	binary.LittleEndian.PutUint64(r.buf[:], uint64(r.head)) // #nosec G115 -- head is an index, never negative
	_, herr := r.f.WriteAt(r.buf[:], 0)
	r.added = 0
	return errors.Join(err, herr)
}

func (r *recentIDs) sync() error  { return r.f.Sync() }
func (r *recentIDs) close() error { return r.f.Close() }
