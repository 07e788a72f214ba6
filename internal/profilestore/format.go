package profilestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/binenc"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var errCorrupt = errors.New("corrupt profile record")

// appendDictDelta appends the dictionary entries added since m:
//
//	uvarint n, string × n                 strings
//	uvarint n, mapping × n                mappings
//	uvarint n, function × n               functions
//	uvarint n, location × n               locations
//	uvarint n, (uvarint k, loc id × k)    stacks
//	uvarint n, label set × n              label sets
func appendDictDelta(b []byte, d *dict, m dictMark) []byte {
	b = binary.AppendUvarint(b, uint64(len(d.strs.items)-m.strs))
	for _, s := range d.strs.items[m.strs:] {
		b = binenc.AppendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(d.maps.items)-m.maps))
	for i := range d.maps.items[m.maps:] {
		b = appendMapping(b, &d.maps.items[m.maps+i])
	}
	b = binary.AppendUvarint(b, uint64(len(d.funcs.items)-m.funcs))
	for i := range d.funcs.items[m.funcs:] {
		b = appendFunction(b, &d.funcs.items[m.funcs+i])
	}
	b = binary.AppendUvarint(b, uint64(len(d.locations)-m.locs))
	for i := range d.locations[m.locs:] {
		b = appendLocation(b, &d.locations[m.locs+i])
	}
	b = binary.AppendUvarint(b, uint64(len(d.stackEnd)-m.stacks))
	for i := m.stacks; i < len(d.stackEnd); i++ {
		b = appendIDs(b, d.stack(uint32(i)))
	}
	b = binary.AppendUvarint(b, uint64(len(d.labelSets)-m.lsets))
	for i := range d.labelSets[m.lsets:] {
		b = appendLabelSet(b, &d.labelSets[m.lsets+i])
	}
	return b
}

// readDictDelta adds the entries of a delta to d, checking that every id
// they refer to exists and that each entry is new (so ids stay positions).
func readDictDelta(r *binenc.Reader, d *dict) error {
	str := func() uint32 {
		id := r.Uvarint()
		if id >= uint64(len(d.strs.items)) {
			r.Fail()
			return 0
		}
		return uint32(id)
	}
	fresh := func(got uint32, want int) {
		if int(got) != want {
			r.Fail()
		}
	}
	var key []byte
	for n := r.Count(1); n > 0; n-- {
		s := r.LenString()
		fresh(d.internString(s), len(d.strs.items)-1)
	}
	for n := r.Count(7); n > 0 && r.Err() == nil; n-- {
		m := mapping{start: r.Uvarint(), limit: r.Uvarint(), offset: r.Uvarint(), file: str(), buildID: str(), flags: r.Byte(), kernelReloc: str()}
		fresh(d.maps.intern(m), len(d.maps.items)-1)
	}
	for n := r.Count(4); n > 0 && r.Err() == nil; n-- {
		f := function{name: str(), systemName: str(), filename: str(), startLine: r.Varint()}
		fresh(d.funcs.intern(f), len(d.funcs.items)-1)
	}
	for n := r.Count(4); n > 0 && r.Err() == nil; n-- {
		var l location
		l.mapping = uint32(r.Uvarint())
		if int(l.mapping) > len(d.maps.items) {
			r.Fail()
		}
		l.address = r.Uvarint()
		l.folded = r.Byte() == 1
		for k := r.Count(3); k > 0 && r.Err() == nil; k-- {
			ln := line{function: uint32(r.Uvarint()), line: r.Varint(), column: r.Varint()}
			if int(ln.function) > len(d.funcs.items) {
				r.Fail()
			}
			l.lines = append(l.lines, ln)
		}
		if r.Err() != nil {
			break
		}
		var id uint32
		id, key = d.internLocation(l, key)
		fresh(id, len(d.locations)-1)
	}
	var locs []uint32
	for n := r.Count(1); n > 0 && r.Err() == nil; n-- {
		locs = locs[:0]
		for k := r.Count(1); k > 0; k-- {
			id := r.Uvarint()
			if id >= uint64(len(d.locations)) {
				r.Fail()
				break
			}
			locs = append(locs, uint32(id))
		}
		if r.Err() != nil {
			break
		}
		var id uint32
		id, key = d.internStack(locs, key)
		fresh(id, len(d.stackEnd)-1)
	}
	for n := r.Count(2); n > 0 && r.Err() == nil; n-- {
		var ls labelSet
		for k := r.Count(1); k > 0 && r.Err() == nil; k-- {
			ls.str = append(ls.str, str())
		}
		if len(ls.str)%2 != 0 {
			r.Fail()
		}
		for k := r.Count(3); k > 0 && r.Err() == nil; k-- {
			ls.num = append(ls.num, numLabel{key: str(), value: r.Varint(), unit: str()})
		}
		if r.Err() != nil {
			break
		}
		var id uint32
		id, key = d.internLabelSet(ls, key)
		fresh(id, len(d.labelSets)-1)
	}
	return r.Err()
}

// decodeSectionA applies the dictionary delta of a record's section A to d
// and returns the profile's metadata, type and labels.
func decodeSectionA(a []byte, d *dict) (*profMeta, string, model.Labels, error) {
	r := binenc.NewReader(a)
	if err := readDictDelta(&r, d); err != nil {
		return nil, "", nil, fmt.Errorf("%w: dictionary: %v", errCorrupt, err)
	}
	str := func() string {
		id := r.Uvarint()
		if id >= uint64(len(d.strs.items)) {
			r.Fail()
			return ""
		}
		return d.strs.items[id]
	}
	m := &profMeta{}
	copy(m.id[:], r.Bytes(16))
	typ := str()
	var ls model.Labels
	for n := r.Count(2); n > 0 && r.Err() == nil; n-- {
		ls = append(ls, model.Label{Name: str(), Value: str()})
	}
	m.timeNanos = r.Varint()
	m.durationNanos = r.Varint()
	for n := r.Count(2); n > 0 && r.Err() == nil; n-- {
		m.sampleTypes = append(m.sampleTypes, storage.ValueType{Type: str(), Unit: str()})
	}
	m.defaultType = str()
	m.periodType = storage.ValueType{Type: str(), Unit: str()}
	m.period = r.Varint()
	m.pprofTime = r.Varint()
	m.pprofDuration = r.Varint()
	for n := r.Count(1); n > 0 && r.Err() == nil; n-- {
		m.comments = append(m.comments, str())
	}
	m.dropFrames = str()
	m.keepFrames = str()
	m.docURL = str()
	m.totals = make([]int64, len(m.sampleTypes))
	for i := range m.totals {
		m.totals[i] = r.Varint()
	}
	m.samples = int(r.Uvarint())
	m.spans = r.Byte() == 1
	if err := r.Err(); err != nil {
		return nil, "", nil, fmt.Errorf("%w: metadata: %v", errCorrupt, err)
	}
	if r.More() {
		return nil, "", nil, fmt.Errorf("%w: %d bytes after the metadata", errCorrupt, r.Len())
	}
	return m, typ, ls, nil
}

// sampleIter walks the samples of a decoded section B.
type sampleIter struct {
	r      binenc.Reader
	n      int // samples left
	stack  uint32
	lset   uint32
	values []int64
}

func newSampleIter(b []byte, m *profMeta) *sampleIter {
	return &sampleIter{r: binenc.NewReader(b), n: m.samples, values: make([]int64, len(m.sampleTypes))}
}

// next reads the next sample into it.stack, it.lset and it.values.
func (it *sampleIter) next() bool {
	if it.n == 0 || it.r.Err() != nil {
		return false
	}
	it.n--
	it.stack += uint32(it.r.Uvarint())
	it.lset = uint32(it.r.Uvarint())
	for i := range it.values {
		it.values[i] = it.r.Varint()
	}
	return it.r.Err() == nil
}

func (it *sampleIter) err() error {
	if err := it.r.Err(); err != nil {
		return fmt.Errorf("%w: samples: %v", errCorrupt, err)
	}
	if it.n > 0 {
		return fmt.Errorf("%w: %d samples missing", errCorrupt, it.n)
	}
	return nil
}
