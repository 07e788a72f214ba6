package logstore

import (
	"encoding/binary"
)

// indexRecord is one record of a partition's index file.
type indexRecord struct {
	kind    byte
	seq     uint64
	removed []int64 // offsets of replaced blocks (idxReplace)
	blocks  []*blockMeta
}

func appendIndexRecord(dst []byte, kind byte, seq uint64, removed, blocks []*blockMeta) []byte {
	dst, start := beginRecord(dst)
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, seq)
	if kind == idxReplace {
		dst = binary.AppendUvarint(dst, uint64(len(removed)))
		for _, m := range removed {
			dst = binary.AppendUvarint(dst, uint64(m.off))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(blocks)))
	for _, m := range blocks {
		dst = binary.LittleEndian.AppendUint64(dst, m.sid)
		dst = binary.AppendVarint(dst, m.minTs)
		dst = binary.AppendUvarint(dst, uint64(m.maxTs-m.minTs))
		dst = binary.AppendUvarint(dst, uint64(m.off))
		dst = binary.AppendUvarint(dst, uint64(m.rows))
		dst = binary.AppendUvarint(dst, uint64(m.bloomLen))
		dst = binary.AppendUvarint(dst, uint64(m.colsLen))
		dst = binary.LittleEndian.AppendUint32(dst, m.bloomCRC)
		dst = binary.LittleEndian.AppendUint32(dst, m.colsCRC)
		dst = binary.AppendUvarint(dst, m.seq)
		dst = append(dst, m.flags)
	}
	return finishRecord(dst, start)
}

func decodeIndexRecord(payload []byte) (*indexRecord, error) {
	d := decoder{b: payload}
	r := &indexRecord{kind: d.u8(), seq: d.uvarint()}
	if r.kind < idxFlush || r.kind > idxSnapshot {
		return nil, errCorrupt
	}
	if r.kind == idxReplace {
		r.removed = make([]int64, d.count(1))
		for i := range r.removed {
			r.removed[i] = int64(d.uvarint())
		}
	}
	r.blocks = make([]*blockMeta, d.count(24))
	for i := range r.blocks {
		m := &blockMeta{sid: d.u64(), minTs: d.varint()}
		m.maxTs = m.minTs + int64(d.uvarint())
		m.off = int64(d.uvarint())
		m.rows = uint32(d.uvarint())
		m.bloomLen = uint32(d.uvarint())
		m.colsLen = uint32(d.uvarint())
		m.bloomCRC = d.u32()
		m.colsCRC = d.u32()
		m.seq = d.uvarint()
		m.flags = d.u8()
		r.blocks[i] = m
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return r, nil
}
