package profilestore

import (
	"encoding/binary"
	"hash/crc32"
)

// A partition file is a magic header followed by records:
//
//	u32 payload length | u32 CRC-32C of payload | payload
//
// A record that is cut short or fails its CRC ends the valid part of the
// file: it is a torn write, truncated when the store opens.

const recordHeader = 8

// fileMagic starts every partition file; its last byte is the format
// version.
const fileMagic = "VGPROF\x00\x01"

// maxRecord bounds a record's payload so that a corrupt length cannot make
// the reader allocate without limit.
const maxRecord = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func beginRecord(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, recordHeader)...), len(dst)
}

func finishRecord(dst []byte, start int) []byte {
	payload := dst[start+recordHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// parseRecordHeader returns the payload length and CRC of the header h, or
// ok=false when the length is impossible.
func parseRecordHeader(h []byte) (n uint32, sum uint32, ok bool) {
	n = binary.LittleEndian.Uint32(h)
	return n, binary.LittleEndian.Uint32(h[4:]), n > 0 && n <= maxRecord
}
