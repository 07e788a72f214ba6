package profilestore

import (
	"encoding/binary"
	"slices"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// A profile is stored as one record (docs/format/profilestore.md):
//
//	u8 kind (1) | uvarint len(A) | A = zstd(symbols added + metadata) | B = zstd(samples)
//
// Opening the store decodes A of every record to rebuild the dictionaries
// and the index; a merge decodes only B of the profiles it selects.

const kindProfile = 1

const labelSpanID = "span_id"

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxSection))
)

// maxSection bounds a decoded section, so that a corrupt record cannot make
// the reader allocate without limit.
const maxSection = 1 << 30

// profMeta is what the index keeps of a profile; the samples stay on disk.
type profMeta struct {
	id            model.RecordID
	series        *series
	timeNanos     int64
	durationNanos int64
	// pprofTime and pprofDuration are the pprof's own time_nanos and
	// duration_nanos (the profile's when the pprof has none).
	pprofTime     int64
	pprofDuration int64
	sampleTypes   []storage.ValueType
	defaultType   string
	periodType    storage.ValueType
	period        int64
	comments      []string
	dropFrames    string
	keepFrames    string
	docURL        string
	totals        []int64
	samples       int
	spans         bool // some sample has a span_id label

	bOff int64 // where section B is in the file, and its length
	bLen int64
}

// sampleRef is one sample of a profile being encoded.
type sampleRef struct {
	stack, lset uint32 // lset is labelSet id + 1; 0 for no labels
	values      []int64
}

// encoder turns parsed profiles into records, interning their symbols into a
// partition's dictionary. It is used under the partition's lock.
type encoder struct {
	key     []byte
	locIDs  map[*profile.Location]uint32
	mapIDs  map[*profile.Mapping]uint32
	funcIDs map[*profile.Function]uint32
	stack   []uint32
	samples []sampleRef
	a, b    []byte
}

func newEncoder() *encoder {
	return &encoder{locIDs: map[*profile.Location]uint32{}, mapIDs: map[*profile.Mapping]uint32{}, funcIDs: map[*profile.Function]uint32{}}
}

// encode interns pp's symbols into d and appends the record of the profile
// to dst. It returns the record and the profile's metadata, whose bOff is
// relative to the start of the record and series unset.
func (e *encoder) encode(dst []byte, d *dict, p *model.Profile, pp *profile.Profile) ([]byte, *profMeta) {
	mark := d.mark()
	clear(e.locIDs)
	clear(e.mapIDs)
	clear(e.funcIDs)
	m := &profMeta{
		id:            p.ID,
		timeNanos:     p.TimeNanos,
		durationNanos: p.DurationNanos,
		defaultType:   pp.DefaultSampleType,
		period:        pp.Period,
		comments:      pp.Comments,
		dropFrames:    pp.DropFrames,
		keepFrames:    pp.KeepFrames,
		docURL:        pp.DocURL,
		samples:       len(pp.Sample),
		pprofTime:     pp.TimeNanos,
		pprofDuration: pp.DurationNanos,
	}
	if m.pprofTime == 0 {
		m.pprofTime, m.pprofDuration = p.TimeNanos, p.DurationNanos
	}
	for _, st := range pp.SampleType {
		m.sampleTypes = append(m.sampleTypes, storage.ValueType{Type: st.Type, Unit: st.Unit})
	}
	if pp.PeriodType != nil {
		m.periodType = storage.ValueType{Type: pp.PeriodType.Type, Unit: pp.PeriodType.Unit}
	}
	m.totals = make([]int64, len(pp.SampleType))

	e.samples = e.samples[:0]
	for _, s := range pp.Sample {
		e.stack = e.stack[:0]
		for _, l := range s.Location {
			e.stack = append(e.stack, e.location(d, l))
		}
		var sid uint32
		sid, e.key = d.internStack(e.stack, e.key)
		var lset uint32
		if len(s.Label) > 0 || len(s.NumLabel) > 0 {
			var ls labelSet
			for _, k := range sortedKeys(s.Label) {
				if k == labelSpanID {
					m.spans = true
				}
				for _, v := range s.Label[k] {
					ls.str = append(ls.str, d.internString(k), d.internString(v))
				}
			}
			for _, k := range sortedKeys(s.NumLabel) {
				units := s.NumUnit[k]
				for i, v := range s.NumLabel[k] {
					var u string
					if i < len(units) {
						u = units[i]
					}
					ls.num = append(ls.num, numLabel{key: d.internString(k), value: v, unit: d.internString(u)})
				}
			}
			var id uint32
			id, e.key = d.internLabelSet(ls, e.key)
			lset = id + 1
		}
		for i, v := range s.Value {
			m.totals[i] += v
		}
		e.samples = append(e.samples, sampleRef{stack: sid, lset: lset, values: s.Value})
	}
	slices.SortStableFunc(e.samples, func(x, y sampleRef) int {
		if x.stack != y.stack {
			return int(x.stack) - int(y.stack)
		}
		return int(x.lset) - int(y.lset)
	})

	// The metadata's strings join the dictionary before its delta is
	// written, so that section A only refers to strings written before.
	d.internString(p.Type)
	for _, l := range p.Labels {
		d.internString(l.Name)
		d.internString(l.Value)
	}
	for _, st := range m.sampleTypes {
		d.internString(st.Type)
		d.internString(st.Unit)
	}
	for _, s := range append([]string{m.defaultType, m.periodType.Type, m.periodType.Unit, m.dropFrames, m.keepFrames, m.docURL}, m.comments...) {
		d.internString(s)
	}

	// Section A: the dictionary entries added, then the metadata.
	a := e.a[:0]
	a = appendDictDelta(a, d, mark)
	a = append(a, p.ID[:]...)
	a = binary.AppendUvarint(a, uint64(d.internString(p.Type)))
	a = binary.AppendUvarint(a, uint64(len(p.Labels)))
	for _, l := range p.Labels {
		a = binary.AppendUvarint(a, uint64(d.internString(l.Name)))
		a = binary.AppendUvarint(a, uint64(d.internString(l.Value)))
	}
	a = binary.AppendVarint(a, p.TimeNanos)
	a = binary.AppendVarint(a, p.DurationNanos)
	a = binary.AppendUvarint(a, uint64(len(m.sampleTypes)))
	for _, st := range m.sampleTypes {
		a = binary.AppendUvarint(a, uint64(d.internString(st.Type)))
		a = binary.AppendUvarint(a, uint64(d.internString(st.Unit)))
	}
	a = binary.AppendUvarint(a, uint64(d.internString(m.defaultType)))
	a = binary.AppendUvarint(a, uint64(d.internString(m.periodType.Type)))
	a = binary.AppendUvarint(a, uint64(d.internString(m.periodType.Unit)))
	a = binary.AppendVarint(a, m.period)
	a = binary.AppendVarint(a, m.pprofTime)
	a = binary.AppendVarint(a, m.pprofDuration)
	a = binary.AppendUvarint(a, uint64(len(m.comments)))
	for _, c := range m.comments {
		a = binary.AppendUvarint(a, uint64(d.internString(c)))
	}
	a = binary.AppendUvarint(a, uint64(d.internString(m.dropFrames)))
	a = binary.AppendUvarint(a, uint64(d.internString(m.keepFrames)))
	a = binary.AppendUvarint(a, uint64(d.internString(m.docURL)))
	for _, t := range m.totals {
		a = binary.AppendVarint(a, t)
	}
	a = binary.AppendUvarint(a, uint64(len(e.samples)))
	if m.spans {
		a = append(a, 1)
	} else {
		a = append(a, 0)
	}

	// Section B: the samples, by stack id.
	b := e.b[:0]
	var prev uint32
	for _, s := range e.samples {
		b = binary.AppendUvarint(b, uint64(s.stack-prev))
		prev = s.stack
		b = binary.AppendUvarint(b, uint64(s.lset))
		for _, v := range s.values {
			b = binary.AppendVarint(b, v)
		}
	}
	e.a, e.b = a, b

	start := len(dst)
	dst, hdr := beginRecord(dst)
	dst = append(dst, kindProfile)
	za := zenc.EncodeAll(a, nil)
	dst = binary.AppendUvarint(dst, uint64(len(za)))
	dst = append(dst, za...)
	m.bOff = int64(len(dst) - start)
	dst = zenc.EncodeAll(b, dst)
	m.bLen = int64(len(dst)-start) - m.bOff
	return finishRecord(dst, hdr), m
}

// location interns l (and its mapping and functions) and returns its id.
func (e *encoder) location(d *dict, l *profile.Location) uint32 {
	if id, ok := e.locIDs[l]; ok {
		return id
	}
	var loc location
	if l.Mapping != nil {
		mid, ok := e.mapIDs[l.Mapping]
		if !ok {
			mp := l.Mapping
			var flags uint8
			for i, b := range []bool{mp.HasFunctions, mp.HasFilenames, mp.HasLineNumbers, mp.HasInlineFrames} {
				if b {
					flags |= 1 << i
				}
			}
			mid = d.maps.intern(mapping{
				start: mp.Start, limit: mp.Limit, offset: mp.Offset,
				file: d.internString(mp.File), buildID: d.internString(mp.BuildID),
				flags: flags, kernelReloc: d.internString(mp.KernelRelocationSymbol),
			})
			e.mapIDs[l.Mapping] = mid
		}
		loc.mapping = mid + 1
	}
	loc.address = l.Address
	loc.folded = l.IsFolded
	for _, ln := range l.Line {
		var fid uint32
		if ln.Function != nil {
			var ok bool
			fid, ok = e.funcIDs[ln.Function]
			if !ok {
				f := ln.Function
				fid = d.funcs.intern(function{
					name: d.internString(f.Name), systemName: d.internString(f.SystemName),
					filename: d.internString(f.Filename), startLine: f.StartLine,
				}) + 1
				e.funcIDs[ln.Function] = fid
			}
		}
		loc.lines = append(loc.lines, line{function: fid, line: ln.Line, column: ln.Column})
	}
	var id uint32
	id, e.key = d.internLocation(loc, e.key)
	e.locIDs[l] = id
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
