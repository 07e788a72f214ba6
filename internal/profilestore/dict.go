package profilestore

import (
	"encoding/binary"
	"unsafe"
)

// A partition's symbols and stacks are kept once, in dictionaries whose ids
// are their positions: every profile of the day refers to them by id, so a
// stack seen in 360 profiles is stored once and merged as one integer.
// Dictionaries only grow. Entries interned by a write that then fails are
// rolled back (truncate) before anyone refers to them.

type mapping struct {
	start, limit, offset uint64
	file, buildID        uint32 // string ids
	flags                uint8  // hasFunctions, hasFilenames, hasLineNumbers, hasInlineFrames
	kernelReloc          uint32
}

type function struct {
	name, systemName, filename uint32
	startLine                  int64
}

type line struct {
	function uint32
	line     int64
	column   int64
}

type location struct {
	mapping uint32 // id+1; 0 for none
	address uint64
	folded  bool
	lines   []line
}

type numLabel struct {
	key   uint32
	value int64
	unit  uint32
}

// labelSet is the pprof labels of a sample: string labels as (key, value)
// string-id pairs and numeric labels, in the order the profile had them.
type labelSet struct {
	str []uint32 // key, value, key, value, …
	num []numLabel
}

// table is a dictionary of comparable values: ids are positions.
type table[T comparable] struct {
	items []T
	idx   map[T]uint32
}

func (t *table[T]) intern(v T) uint32 {
	if id, ok := t.idx[v]; ok {
		return id
	}
	if t.idx == nil {
		t.idx = map[T]uint32{}
	}
	id := uint32(len(t.items))
	t.items = append(t.items, v)
	t.idx[v] = id
	return id
}

// truncate forgets the values from position n on.
func (t *table[T]) truncate(n int) {
	for _, v := range t.items[n:] {
		delete(t.idx, v)
	}
	t.items = t.items[:n]
}

type dict struct {
	strs  table[string]
	maps  table[mapping]
	funcs table[function]

	locations []location
	locIdx    map[string]uint32 // key: encoded location

	stackLocs []uint32 // locations of all stacks, leaf first, back to back
	stackEnd  []uint32 // stack i is stackLocs[stackEnd[i-1]:stackEnd[i]]
	stackIdx  map[string]uint32

	labelSets []labelSet
	lsIdx     map[string]uint32
}

// dictMark is the size of every dictionary at some point, to roll back to.
type dictMark struct{ strs, maps, funcs, locs, stacks, lsets int }

func newDict() *dict {
	d := &dict{
		locIdx:   map[string]uint32{},
		stackIdx: map[string]uint32{},
		lsIdx:    map[string]uint32{},
	}
	d.internString("") // string 0 is "", as in pprof
	return d
}

func (d *dict) mark() dictMark {
	return dictMark{len(d.strs.items), len(d.maps.items), len(d.funcs.items), len(d.locations), len(d.stackEnd), len(d.labelSets)}
}

// rollback forgets every entry added since m.
func (d *dict) rollback(m dictMark) {
	d.strs.truncate(m.strs)
	d.maps.truncate(m.maps)
	d.funcs.truncate(m.funcs)
	var kb []byte
	for _, v := range d.locations[m.locs:] {
		kb = appendLocation(kb[:0], &v)
		delete(d.locIdx, string(kb))
	}
	d.locations = d.locations[:m.locs]
	for i := m.stacks; i < len(d.stackEnd); i++ {
		kb = appendIDs(kb[:0], d.stack(uint32(i)))
		delete(d.stackIdx, string(kb))
	}
	if m.stacks > 0 {
		d.stackLocs = d.stackLocs[:d.stackEnd[m.stacks-1]]
	} else {
		d.stackLocs = d.stackLocs[:0]
	}
	d.stackEnd = d.stackEnd[:m.stacks]
	for _, v := range d.labelSets[m.lsets:] {
		kb = appendLabelSet(kb[:0], &v)
		delete(d.lsIdx, string(kb))
	}
	d.labelSets = d.labelSets[:m.lsets]
}

func (d *dict) stack(id uint32) []uint32 {
	var start uint32
	if id > 0 {
		start = d.stackEnd[id-1]
	}
	return d.stackLocs[start:d.stackEnd[id]]
}

func (d *dict) internString(s string) uint32 { return d.strs.intern(s) }

// internLocation, internStack and internLabelSet intern a value under its
// encoding; key is scratch space, returned for reuse.

func (d *dict) internLocation(l location, key []byte) (uint32, []byte) {
	key = appendLocation(key[:0], &l)
	return lookupOrAdd(d.locIdx, key, len(d.locations), func() { d.locations = append(d.locations, l) }), key
}

func (d *dict) internStack(locs []uint32, key []byte) (uint32, []byte) {
	key = appendIDs(key[:0], locs)
	return lookupOrAdd(d.stackIdx, key, len(d.stackEnd), func() {
		d.stackLocs = append(d.stackLocs, locs...)
		d.stackEnd = append(d.stackEnd, uint32(len(d.stackLocs)))
	}), key
}

func (d *dict) internLabelSet(ls labelSet, key []byte) (uint32, []byte) {
	key = appendLabelSet(key[:0], &ls)
	return lookupOrAdd(d.lsIdx, key, len(d.labelSets), func() { d.labelSets = append(d.labelSets, ls) }), key
}

// lookupOrAdd returns the id of key in idx or, when absent, calls add and
// records next as its id.
func lookupOrAdd(idx map[string]uint32, key []byte, next int, add func()) uint32 {
	if id, ok := idx[unsafeString(key)]; ok {
		return id
	}
	add()
	idx[string(key)] = uint32(next)
	return uint32(next)
}

// The encodings below are both the dictionaries' keys and their on-disk
// form (docs/format/profilestore.md).

func appendMapping(b []byte, m *mapping) []byte {
	b = binary.AppendUvarint(b, m.start)
	b = binary.AppendUvarint(b, m.limit)
	b = binary.AppendUvarint(b, m.offset)
	b = binary.AppendUvarint(b, uint64(m.file))
	b = binary.AppendUvarint(b, uint64(m.buildID))
	b = append(b, m.flags)
	return binary.AppendUvarint(b, uint64(m.kernelReloc))
}

func appendFunction(b []byte, f *function) []byte {
	b = binary.AppendUvarint(b, uint64(f.name))
	b = binary.AppendUvarint(b, uint64(f.systemName))
	b = binary.AppendUvarint(b, uint64(f.filename))
	return binary.AppendVarint(b, f.startLine)
}

func appendLocation(b []byte, l *location) []byte {
	b = binary.AppendUvarint(b, uint64(l.mapping))
	b = binary.AppendUvarint(b, l.address)
	if l.folded {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l.lines)))
	for _, ln := range l.lines {
		b = binary.AppendUvarint(b, uint64(ln.function))
		b = binary.AppendVarint(b, ln.line)
		b = binary.AppendVarint(b, ln.column)
	}
	return b
}

func appendIDs(b []byte, ids []uint32) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

func appendLabelSet(b []byte, ls *labelSet) []byte {
	b = appendIDs(b, ls.str)
	b = binary.AppendUvarint(b, uint64(len(ls.num)))
	for _, n := range ls.num {
		b = binary.AppendUvarint(b, uint64(n.key))
		b = binary.AppendVarint(b, n.value)
		b = binary.AppendUvarint(b, uint64(n.unit))
	}
	return b
}

// unsafeString views b as a string for a map lookup, which does not keep it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b)) // #nosec G103 -- a view for a map lookup, which does not keep it
}
