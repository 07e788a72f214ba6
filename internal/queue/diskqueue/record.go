package diskqueue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/vigilhq/vigil/internal/auth"
)

// A record is stored, in a segment of version 2 (the version this code
// writes), as
//
//	[u32 length][u32 crc][u8 tenantlen][tenant][u16 keylen][key][value]
//
// and in a segment of version 1 (written before the queue carried
// tenants; read, never written) as
//
//	[u32 length][u32 crc][u16 keylen][key][value]
//
// in big-endian byte order. length counts the bytes after the 8-byte header
// (1 + tenantlen + 2 + keylen + len(value) in version 2, 2 + keylen +
// len(value) in version 1), so it is never 0; a zero length marks the end of
// data. crc is the CRC-32C (Castagnoli) of the 4 length bytes followed by the
// length bytes of payload, so a corrupted length is detected too. tenant is
// a valid tenant id (auth.ValidTenant); a version-1 record is
// auth.DefaultTenant's.
const (
	recordHeaderSize = 8
	keyLenSize       = 2
	tenantLenSize    = 1
	// recordOverhead is the number of bytes a record adds to its tenant,
	// key and value.
	recordOverhead = recordHeaderSize + tenantLenSize + keyLenSize
	maxKeyLen      = math.MaxUint16
	// maxTenantLen is the longest tenant id auth.ValidTenant accepts,
	// well below the u8 length's 255.
	maxTenantLen = 128
	// maxPayload bounds the length field.
	maxPayload = math.MaxUint32
)

// Segment versions: the last byte of a segment's header.
const (
	// version1 records carry no tenant: every one is auth.DefaultTenant's.
	version1 byte = 1
	// version2 records carry their tenant. Producers write only version 2.
	version2 byte = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the error Fetch returns when durable records
// cannot be read back: a checksum mismatch or a missing segment. Fetch keeps
// returning it; the directory needs an operator (restore it from a backup,
// or remove it and accept the loss).
var ErrCorrupt = errors.New("corrupt queue data")

// recordSize returns the on-disk size of a record (version 2) with the
// given tenant, key and value lengths.
func recordSize(tenantLen, keyLen, valueLen int) int64 {
	return int64(recordOverhead) + int64(tenantLen) + int64(keyLen) + int64(valueLen)
}

// appendRecord appends the version-2 encoding of tenant, key and value to
// dst. The caller has checked the lengths.
func appendRecord(dst []byte, tenant, key string, value []byte) []byte {
	payload := tenantLenSize + len(tenant) + keyLenSize + len(key) + len(value)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(payload))
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, filled in below
	dst = append(dst, byte(len(tenant)))
	dst = append(dst, tenant...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	crc := crc32.Update(0, castagnoli, dst[start:start+4])
	crc = crc32.Update(crc, castagnoli, dst[start+recordHeaderSize:])
	binary.BigEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// parseHeader returns the payload length and checksum of a record header.
func parseHeader(hdr []byte) (length uint32, crc uint32) {
	return binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
}

// decodePayload checks a record's payload against its header and splits it
// into tenant, key and value, as the segment version lays them out. value
// aliases payload.
func decodePayload(version byte, hdr, payload []byte) (tenant, key string, value []byte, err error) {
	length, want := parseHeader(hdr)
	if int64(len(payload)) != int64(length) {
		return "", "", nil, fmt.Errorf("%w: payload has %d bytes; header says %d", ErrCorrupt, len(payload), length)
	}
	got := crc32.Update(crc32.Update(0, castagnoli, hdr[0:4]), castagnoli, payload)
	if got != want {
		return "", "", nil, fmt.Errorf("%w: crc32c is %08x; header says %08x", ErrCorrupt, got, want)
	}
	rest := payload
	switch version {
	case version1:
		tenant = auth.DefaultTenant
	case version2:
		if len(rest) < tenantLenSize {
			return "", "", nil, fmt.Errorf("%w: empty payload has no tenant length", ErrCorrupt)
		}
		n := int(rest[0])
		if tenantLenSize+n > len(rest) {
			return "", "", nil, fmt.Errorf("%w: tenant of %d bytes does not fit in a payload of %d bytes", ErrCorrupt, n, len(payload))
		}
		tenant = string(rest[tenantLenSize : tenantLenSize+n])
		if !auth.ValidTenant(tenant) {
			return "", "", nil, fmt.Errorf("%w: tenant %q is not a tenant id", ErrCorrupt, tenant)
		}
		rest = rest[tenantLenSize+n:]
	default:
		return "", "", nil, fmt.Errorf("%w: unknown segment version %d", ErrCorrupt, version)
	}
	if len(rest) < keyLenSize {
		return "", "", nil, fmt.Errorf("%w: payload of %d bytes has no key length", ErrCorrupt, len(payload))
	}
	keyLen := int(binary.BigEndian.Uint16(rest))
	if keyLenSize+keyLen > len(rest) {
		return "", "", nil, fmt.Errorf("%w: key of %d bytes does not fit in a payload of %d bytes", ErrCorrupt, keyLen, len(payload))
	}
	return tenant, string(rest[keyLenSize : keyLenSize+keyLen]), rest[keyLenSize+keyLen:], nil
}

// scanRecords reads records of a segment of the given version from r until the first one that is short,
// zero-length or fails its checksum, and returns the number of bytes taken by
// the valid records before it and their count. err reports only read errors
// other than io.EOF and io.ErrUnexpectedEOF.
func scanRecords(version byte, r io.Reader) (end int64, n int, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [recordHeaderSize]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return end, n, ignoreEOF(err)
		}
		length, _ := parseHeader(hdr[:])
		if length == 0 {
			return end, n, nil
		}
		if uint64(cap(payload)) < uint64(length) {
			// Grow in steps so that a garbage length costs at most twice
			// the bytes actually present in the file.
			payload = make([]byte, 0, min(uint64(length), max(1<<16, 2*uint64(cap(payload)))))
		}
		payload = payload[:0]
		for uint64(len(payload)) < uint64(length) {
			if len(payload) == cap(payload) {
				payload = append(payload, 0)[:len(payload)]
			}
			chunk := payload[len(payload):min(uint64(cap(payload)), uint64(length))]
			m, err := io.ReadFull(br, chunk)
			payload = payload[:len(payload)+m]
			if err != nil {
				return end, n, ignoreEOF(err)
			}
		}
		if _, _, _, err := decodePayload(version, hdr[:], payload); err != nil {
			return end, n, nil
		}
		end += recordHeaderSize + int64(length)
		n++
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}
