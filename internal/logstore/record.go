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

func appendRecord(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc(payload))
	return append(dst, payload...)
}

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

// decoder reads the fields of a record payload; the first malformed field
// sets err and makes every later read return zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) u8() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// string returns a copy.
func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.bytes(int(n)))
}

// count reads a count and checks it against the bytes left, given that each
// item takes at least minSize bytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

// errPunchUnsupported means the file system cannot free a range of a file.
var errPunchUnsupported = errors.New("punching holes is not supported")
