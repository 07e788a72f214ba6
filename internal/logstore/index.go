package logstore

import (
	"encoding/binary"

	"github.com/vigilhq/vigil/internal/binenc"
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
		if m.flags&flagStats != 0 {
			dst = binary.AppendUvarint(dst, uint64(m.bytes))
			dst = binary.AppendUvarint(dst, uint64(m.statsLen))
			dst = binary.LittleEndian.AppendUint32(dst, m.statsCRC)
		}
	}
	return finishRecord(dst, start)
}

func decodeIndexRecord(payload []byte) (*indexRecord, error) {
	d := binenc.NewReader(payload)
	r := &indexRecord{kind: d.Byte(), seq: d.Uvarint()}
	if r.kind < idxFlush || r.kind > idxSnapshot {
		return nil, errCorrupt
	}
	if r.kind == idxReplace {
		r.removed = make([]int64, d.Count(1))
		for i := range r.removed {
			r.removed[i] = int64(d.Uvarint())
		}
	}
	r.blocks = make([]*blockMeta, d.Count(24))
	for i := range r.blocks {
		m := &blockMeta{sid: d.Uint64(), minTs: d.Varint()}
		m.maxTs = m.minTs + int64(d.Uvarint())
		m.off = int64(d.Uvarint())
		m.rows = uint32(d.Uvarint())
		m.bloomLen = uint32(d.Uvarint())
		m.colsLen = uint32(d.Uvarint())
		m.bloomCRC = d.Uint32()
		m.colsCRC = d.Uint32()
		m.seq = d.Uvarint()
		m.flags = d.Byte()
		if m.flags&flagStats != 0 {
			m.bytes = int64(d.Uvarint())
			m.statsLen = uint32(d.Uvarint())
			m.statsCRC = d.Uint32()
			if m.statsLen > m.colsLen {
				return nil, errCorrupt
			}
		}
		r.blocks[i] = m
	}
	if d.Err() != nil || d.Len() != 0 {
		return nil, errCorrupt
	}
	return r, nil
}
