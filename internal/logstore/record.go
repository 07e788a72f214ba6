package logstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// The index, streams and WAL files are sequences of records:
//
//	u32 payload length | u32 CRC-32C of payload | payload
//
// A record that is cut short or fails its CRC ends the valid part of a file;
// what follows it is a torn write and is truncated on open.

const recordHeader = 8

// maxRecord bounds a record's payload so that a corrupt length cannot make
// the reader allocate without limit.
const maxRecord = 1 << 30

// beginRecord reserves a record header in dst; finishRecord fills it once
// the payload has been appended after it.
func beginRecord(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, recordHeader)...), len(dst)
}

func finishRecord(dst []byte, start int) []byte {
	payload := dst[start+recordHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc(payload))
	return dst
}

// finishRecordSalted is finishRecord with a CRC that also covers salt.
func finishRecordSalted(dst []byte, start int, salt uint64) []byte {
	payload := dst[start+recordHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], saltedCRC(payload, salt))
	return dst
}

func saltedCRC(payload []byte, salt uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], salt)
	return crc32.Update(crc(b[:]), castagnoli, payload)
}

// nextRecordSalted is nextRecord for records written by finishRecordSalted.
func nextRecordSalted(b []byte, salt uint64) (payload []byte, size int, ok bool) {
	if len(b) < recordHeader {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecord || uint64(len(b)-recordHeader) < uint64(n) {
		return nil, 0, false
	}
	payload = b[recordHeader : recordHeader+int(n)]
	if saltedCRC(payload, salt) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, recordHeader + int(n), true
}

// nextRecord returns the first record's payload in b and its total size, or
// ok=false when b does not start with a whole, valid record.
func nextRecord(b []byte) (payload []byte, size int, ok bool) {
	if len(b) < recordHeader {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxRecord || uint64(len(b)-recordHeader) < uint64(n) {
		return nil, 0, false
	}
	payload = b[recordHeader : recordHeader+int(n)]
	if crc(payload) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, recordHeader + int(n), true
}

// errPunchUnsupported means the file system cannot free a range of a file.
var errPunchUnsupported = errors.New("punching holes is not supported")
