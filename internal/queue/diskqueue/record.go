package diskqueue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// A record is stored as
//
//	[u32 length][u32 crc][u16 keylen][key][value]
//
// in big-endian byte order. length counts the bytes after the 8-byte header
// (2 + keylen + len(value)), so it is never 0; a zero length marks the end of
// data. crc is the CRC-32C (Castagnoli) of the 4 length bytes followed by the
// length bytes of payload, so a corrupted length is detected too.
const (
	recordHeaderSize = 8
	keyLenSize       = 2
	// recordOverhead is the number of bytes a record adds to its key and value.
	recordOverhead = recordHeaderSize + keyLenSize
	maxKeyLen      = math.MaxUint16
	// maxPayload bounds the length field.
	maxPayload = math.MaxUint32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the error Fetch returns when durable records
// cannot be read back: a checksum mismatch or a missing segment. Fetch keeps
// returning it; the directory needs an operator (restore it from a backup,
// or remove it and accept the loss).
var ErrCorrupt = errors.New("corrupt queue data")

// recordSize returns the on-disk size of a record with the given key and value.
func recordSize(keyLen, valueLen int) int64 {
	return int64(recordOverhead) + int64(keyLen) + int64(valueLen)
}

// appendRecord appends the encoding of key and value to dst.
// The caller has checked the key and value lengths.
func appendRecord(dst []byte, key string, value []byte) []byte {
	payload := keyLenSize + len(key) + len(value)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(payload))
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, filled in below
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
// into key and value. value aliases payload.
func decodePayload(hdr, payload []byte) (key string, value []byte, err error) {
	length, want := parseHeader(hdr)
	if int64(len(payload)) != int64(length) {
		return "", nil, fmt.Errorf("%w: payload has %d bytes; header says %d", ErrCorrupt, len(payload), length)
	}
	got := crc32.Update(crc32.Update(0, castagnoli, hdr[0:4]), castagnoli, payload)
	if got != want {
		return "", nil, fmt.Errorf("%w: crc32c is %08x; header says %08x", ErrCorrupt, got, want)
	}
	if len(payload) < keyLenSize {
		return "", nil, fmt.Errorf("%w: payload of %d bytes has no key length", ErrCorrupt, len(payload))
	}
	keyLen := int(binary.BigEndian.Uint16(payload))
	if keyLenSize+keyLen > len(payload) {
		return "", nil, fmt.Errorf("%w: key of %d bytes does not fit in a payload of %d bytes", ErrCorrupt, keyLen, len(payload))
	}
	return string(payload[keyLenSize : keyLenSize+keyLen]), payload[keyLenSize+keyLen:], nil
}

// scanRecords reads records from r until the first one that is short,
// zero-length or fails its checksum, and returns the number of bytes taken by
// the valid records before it and their count. err reports only read errors
// other than io.EOF and io.ErrUnexpectedEOF.
func scanRecords(r io.Reader) (end int64, n int, err error) {
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
		if _, _, err := decodePayload(hdr[:], payload); err != nil {
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
