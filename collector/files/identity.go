package files

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/model"
)

const (
	// fingerprintMax caps the bytes that make up a file's fingerprint.
	fingerprintMax = 1024
	// checkMax caps the prefix whose hash confirms that a file found under
	// a new device/inode is the one a state entry describes.
	checkMax = 4096
)

// fileKey is a 128-bit file identity: a fingerprint, or the key records of
// a file are hashed with (see docs/format/file-offsets.md).
type fileKey [16]byte

func (k fileKey) String() string { return hex.EncodeToString(k[:]) }

// fingerprintLen returns how many leading bytes of a file starting with head
// form its fingerprint: the first line including its "\n", or the first
// 1024 bytes, whichever is shorter. It returns 0 while head has neither.
func fingerprintLen(head []byte) int {
	h := head[:min(len(head), fingerprintMax)]
	if i := bytes.IndexByte(h, '\n'); i >= 0 {
		return i + 1
	}
	if len(head) >= fingerprintMax {
		return fingerprintMax
	}
	return 0
}

// fingerprint hashes the fingerprint bytes of a file.
func fingerprint(b []byte) fileKey { return xxh3.Hash128(b).Bytes() }

// deriveKey gives a file whose fingerprint collides with a remembered key a
// key of its own, deterministically, from its device and inode.
func deriveKey(k fileKey, id fileID) fileKey {
	var b [32]byte
	copy(b[:16], k[:])
	binary.BigEndian.PutUint64(b[16:], id.dev)
	binary.BigEndian.PutUint64(b[24:], id.ino)
	return xxh3.Hash128(b[:]).Bytes()
}

// idHasher computes record ids of one file: xxh3-128 over
// host, 0x00, key (16 bytes), offset (8 bytes big-endian).
type idHasher []byte

func newIDHasher(host string, key fileKey) idHasher {
	b := make([]byte, 0, len(host)+1+16+8)
	b = append(b, host...)
	b = append(b, 0)
	b = append(b, key[:]...)
	return append(b, make([]byte, 8)...)
}

func (h idHasher) id(offset int64) model.RecordID {
	binary.BigEndian.PutUint64(h[len(h)-8:], uint64(offset)) // #nosec G115 -- a file offset, never negative
	return xxh3.Hash128(h).Bytes()
}

// rotationSuffix matches what log rotation appends to a base name once its
// extensions are gone: dates and timestamps ("-20240131", "_2024-01-31",
// "-1706659200").
var rotationSuffix = regexp.MustCompile(`[-_](\d{4}-?\d{2}-?\d{2}([-_T]?\d{2,6})?|\d{10,})$`)

// ServiceFromPath derives a service name from a log file name: the base
// name without its extensions and rotation suffixes, so "api.log",
// "api.log.1", "api.log.2.gz", "api.log-20240131" and "api-2024-01-31.log"
// all give "api".
func ServiceFromPath(path string) string {
	base := filepath.Base(path)
	name := strings.TrimLeft(base, ".")
	if i := strings.IndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	name = rotationSuffix.ReplaceAllString(name, "")
	if name == "" {
		return base
	}
	return name
}
