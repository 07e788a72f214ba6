package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigilhq/vigil/internal/fsutil"
)

// File names inside a queue directory besides the segments.
const (
	offsetFileName   = "consumer.offset"
	offsetTmpName    = offsetFileName + fsutil.TmpSuffix
	headFileName     = "producer.head"
	producerLockName = "producer.lock"
	consumerLockName = "consumer.lock"
)

// Both the offset file and the head file hold one position:
//
//	[u64 position][u32 crc32c of the 8 position bytes]
//
// big-endian, 12 bytes.
const positionFileSize = 12

func encodePosition(pos int64) [positionFileSize]byte {
	var b [positionFileSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(pos))
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	return b
}

func decodePosition(b []byte) (int64, error) {
	if len(b) != positionFileSize {
		return 0, fmt.Errorf("position file has %d bytes; want %d", len(b), positionFileSize)
	}
	if got, want := crc32.Checksum(b[:8], castagnoli), binary.BigEndian.Uint32(b[8:]); got != want {
		return 0, fmt.Errorf("position file has crc32c %08x; want %08x", got, want)
	}
	pos := int64(binary.BigEndian.Uint64(b[:8]))
	if pos < 0 {
		return 0, fmt.Errorf("position file holds negative position %d", pos)
	}
	return pos, nil
}

// readCommitted returns the position recorded in the consumer's offset file,
// or 0 when the consumer has never committed.
func readCommitted(dir string) (int64, error) {
	path := filepath.Join(dir, offsetFileName)
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's data directory and a name the store made or listed there
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read committed offset: %w", err)
	}
	pos, err := decodePosition(b)
	if err != nil {
		return 0, fmt.Errorf("cannot read committed offset from %s: %w", path, err)
	}
	return pos, nil
}

// writeCommitted durably replaces the consumer's offset file, so a crash
// leaves either the old or the new position.
func writeCommitted(dir string, dirFile *os.File, pos int64, sync syncFunc) error {
	b := encodePosition(pos)
	return fsutil.Syncs{File: sync, Dir: dirFile}.WriteFileAtomic(filepath.Join(dir, offsetFileName), b[:], 0o600)
}

// The head file tells a consumer in another process how far the log is
// durable. The producer overwrites it in place after every group commit
// without syncing it: it is a hint for live processes, rewritten when a
// producer opens, and it never runs ahead of the synced log because it is
// written after the sync.

// writeHead records pos in the open head file.
func writeHead(f *os.File, pos int64) error {
	b := encodePosition(pos)
	if _, err := f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("cannot write head file: %w", err)
	}
	return nil
}

// readHead returns the position in the open head file. ok is false when the
// file is empty or caught mid-write; the caller tries again later.
func readHead(f *os.File) (pos int64, ok bool, err error) {
	var b [positionFileSize]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("cannot read head file: %w", err)
	}
	if n < positionFileSize {
		return 0, false, nil
	}
	pos, err = decodePosition(b[:])
	if err != nil {
		return 0, false, nil
	}
	return pos, true, nil
}
