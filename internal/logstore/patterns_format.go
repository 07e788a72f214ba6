package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// A pattern file (docs/format/patterns.md):
//
//	"VPAT" version(1 byte, 1)
//	uvarint streams; per stream: uvarint labels; per label: string name, string value
//	uvarint records; per record: uvarint stream, string level, string pattern,
//	    uvarint buckets; per bucket: varint start (in buckets, the first
//	    absolute since 1970, then the difference from the previous), uvarint count
//	crc32c (Castagnoli, little-endian) of everything before
//
// Strings are uvarint-length-prefixed.
const (
	patternsMagic   = "VPAT"
	patternsVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type patternFile struct {
	streams []model.Labels
	records []storage.PatternRecord
	stream  []int // records[i]'s index in streams
}

// encodePatterns encodes recs, sharing each stream's labels.
func encodePatterns(recs []storage.PatternRecord) []byte {
	ids := map[string]int{}
	var streams []model.Labels
	idx := make([]int, len(recs))
	for i, r := range recs {
		k := r.Labels.String()
		id, ok := ids[k]
		if !ok {
			id = len(streams)
			ids[k] = id
			streams = append(streams, r.Labels)
		}
		idx[i] = id
	}
	b := append([]byte(patternsMagic), patternsVersion)
	b = binary.AppendUvarint(b, uint64(len(streams)))
	for _, ls := range streams {
		b = binary.AppendUvarint(b, uint64(len(ls)))
		for _, l := range ls {
			b = binenc.AppendString(b, l.Name)
			b = binenc.AppendString(b, l.Value)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i, r := range recs {
		b = binary.AppendUvarint(b, uint64(idx[i]))
		b = binenc.AppendString(b, r.Level)
		b = binenc.AppendString(b, r.Pattern)
		b = binary.AppendUvarint(b, uint64(len(r.Buckets)))
		prev := int64(0)
		for _, bk := range r.Buckets {
			n := bk.T / storage.PatternBucket
			b = binary.AppendVarint(b, n-prev)
			b = binary.AppendUvarint(b, uint64(bk.Count))
			prev = n
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errPatternFile = errors.New("not a pattern file")

func decodePatterns(b []byte) (*patternFile, error) {
	if len(b) < len(patternsMagic)+1+4 || string(b[:len(patternsMagic)]) != patternsMagic {
		return nil, errPatternFile
	}
	if v := b[len(patternsMagic)]; v != patternsVersion {
		return nil, fmt.Errorf("pattern file version %d: this release reads version %d", v, patternsVersion)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("pattern file checksum mismatch: %w", binenc.ErrCorrupt)
	}
	r := binenc.NewReader(body[len(patternsMagic)+1:])
	f := &patternFile{}
	f.streams = make([]model.Labels, r.Count(1))
	for i := range f.streams {
		ls := make(model.Labels, r.Count(2))
		for j := range ls {
			ls[j] = model.Label{Name: r.LenString(), Value: r.LenString()}
		}
		f.streams[i] = ls
	}
	n := r.Count(4)
	f.records = make([]storage.PatternRecord, n)
	f.stream = make([]int, n)
	for i := range f.records {
		id := r.Uvarint()
		if id >= uint64(len(f.streams)) {
			r.Fail()
			break
		}
		rec := &f.records[i]
		f.stream[i] = int(id)
		rec.Labels = f.streams[id]
		rec.Level = r.LenString()
		rec.Pattern = r.LenString()
		rec.Buckets = make([]storage.PatternCount, r.Count(2))
		prev := int64(0)
		for j := range rec.Buckets {
			prev += r.Varint()
			rec.Buckets[j] = storage.PatternCount{T: prev * storage.PatternBucket, Count: int64(r.Uvarint())}
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.More() {
		return nil, fmt.Errorf("pattern file: %d bytes after the records: %w", r.Len(), binenc.ErrCorrupt)
	}
	return f, nil
}

// each calls fn for the records of streams matching ms with a bucket in
// [start, end).
func (f *patternFile) each(start, end int64, ms []*model.LabelMatcher, fn func(*storage.PatternRecord)) {
	match := make([]bool, len(f.streams))
	for i, ls := range f.streams {
		match[i] = model.MatchLabels(ms, ls)
	}
	for i := range f.records {
		if !match[f.stream[i]] {
			continue
		}
		r := &f.records[i]
		bs := r.Buckets
		if len(bs) == 0 || bs[0].T >= end || bs[len(bs)-1].T+storage.PatternBucket <= start {
			continue
		}
		fn(r)
	}
}
