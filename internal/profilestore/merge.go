package profilestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/vigilhq/vigil/internal/querylimit"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Merge implements storage.ProfileReader. Samples are added up by stack id
// (and label set id with KeepSampleLabels) within each partition, reading
// only the samples of the selected profiles; the pprof profile is built
// once, from the distinct stacks.
func (s *Store) Merge(ctx context.Context, q storage.MergeQuery) (*profile.Profile, error) {
	parts, err := s.partitionsFor(q.Start, q.End)
	if err != nil {
		return nil, err
	}
	var ids map[model.RecordID]bool
	if len(q.ProfileIDs) > 0 {
		ids = make(map[model.RecordID]bool, len(q.ProfileIDs))
		for _, id := range q.ProfileIDs {
			ids[id] = true
		}
	}
	b := newBuilder()
	b.samples = map[string]*profile.Sample{}
	mg := &merger{ctx: ctx, budget: querylimit.BudgetOf(ctx), keepLabels: q.KeepSampleLabels}
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := mg.mergePartition(p, &q, ids, b); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

type merger struct {
	// ctx is the query's: a merge of many profiles stops when it ends.
	// budget is charged the decoded samples of every profile read.
	ctx        context.Context
	budget     querylimit.Budget
	keepLabels bool
	sig        string
	first      *profMeta
	raw, dec   []byte
}

type accEntry struct {
	stack, lset uint32
	values      int // offset in vals
}

func (mg *merger) mergePartition(p *partition, q *storage.MergeQuery, ids map[model.RecordID]bool, b *builder) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.gone {
		return nil
	}
	var metas []*profMeta
	for _, sr := range p.series {
		if !matchSeries(sr, &q.ProfileSelector) {
			continue
		}
		for _, m := range inRange(sr, &q.ProfileSelector) {
			if ids != nil && !ids[m.id] {
				continue
			}
			if len(q.SpanIDs) > 0 && !m.spans {
				continue
			}
			metas = append(metas, m)
		}
	}
	if len(metas) == 0 {
		return nil
	}
	var spanSets []bool // by label set id + 1
	if len(q.SpanIDs) > 0 {
		spanSets = p.spanLabelSets(q.SpanIDs)
	}
	nv := 0
	for _, m := range metas {
		sig := typeSignature(m)
		if mg.first == nil {
			mg.first, mg.sig = m, sig
			b.setTypes(m)
		} else if sig != mg.sig {
			return fmt.Errorf("cannot merge profile %s (sample types %s) with profile %s (sample types %s): select one type", m.id, sig, mg.first.id, mg.sig)
		}
		nv = len(m.sampleTypes)
		b.addMeta(m)
	}
	idx := map[uint64]int{}
	var acc []accEntry
	var vals []int64
	for _, m := range metas {
		if err := mg.ctx.Err(); err != nil {
			return err
		}
		var err error
		mg.raw, mg.dec, err = p.readSamples(m, mg.raw, mg.dec)
		if err != nil {
			return err
		}
		if err := mg.budget.Charge(len(mg.dec)); err != nil {
			return err
		}
		it := newSampleIter(mg.dec, m)
		for it.next() {
			if int(it.stack) >= len(p.dict.stackEnd) || int(it.lset) > len(p.dict.labelSets) {
				return fmt.Errorf("%w: profile %s in %s refers to an unknown stack or label set", errCorrupt, m.id, p.f.Name())
			}
			if spanSets != nil && !spanSets[it.lset] {
				continue
			}
			lset := it.lset
			if !mg.keepLabels {
				lset = 0
			}
			k := uint64(it.stack)<<32 | uint64(lset)
			i, ok := idx[k]
			if !ok {
				i = len(acc)
				idx[k] = i
				acc = append(acc, accEntry{stack: it.stack, lset: lset, values: len(vals)})
				vals = append(vals, make([]int64, nv)...)
			}
			v := vals[acc[i].values : acc[i].values+nv]
			for j, x := range it.values {
				v[j] += x
			}
		}
		if err := it.err(); err != nil {
			return fmt.Errorf("%w (profile %s in %s)", err, m.id, p.f.Name())
		}
	}
	pb := b.forPartition(p)
	for _, e := range acc {
		pb.addSample(e.stack, e.lset, vals[e.values:e.values+nv])
	}
	return nil
}

// spanLabelSets marks, by label set id + 1, the label sets whose span_id is
// one of spans. The caller holds p.mu.
func (p *partition) spanLabelSets(spans []string) []bool {
	out := make([]bool, len(p.dict.labelSets)+1)
	key, ok := p.dict.strs.idx[labelSpanID]
	if !ok {
		return out
	}
	want := map[uint32]bool{}
	for _, sp := range spans {
		if id, ok := p.dict.strs.idx[sp]; ok {
			want[id] = true
		}
	}
	if len(want) == 0 {
		return out
	}
	for i, ls := range p.dict.labelSets {
		for j := 0; j+1 < len(ls.str); j += 2 {
			if ls.str[j] == key && want[ls.str[j+1]] {
				out[i+1] = true
				break
			}
		}
	}
	return out
}

// Profile implements storage.ProfileReader.
func (s *Store) Profile(ctx context.Context, id model.RecordID) (*profile.Profile, storage.ProfileMeta, error) {
	for _, day := range s.partitionDays() {
		if err := ctx.Err(); err != nil {
			return nil, storage.ProfileMeta{}, err
		}
		s.mu.RLock()
		p := s.parts[day]
		s.mu.RUnlock()
		if p == nil {
			continue
		}
		pp, meta, ok, err := p.readProfile(id)
		if err != nil || ok {
			return pp, meta, err
		}
	}
	return nil, storage.ProfileMeta{}, fmt.Errorf("profile %s: %w", id, storage.ErrProfileNotFound)
}

func (p *partition) readProfile(id model.RecordID) (*profile.Profile, storage.ProfileMeta, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	m, ok := p.byID[id]
	if !ok || p.gone {
		return nil, storage.ProfileMeta{}, false, nil
	}
	_, dec, err := p.readSamples(m, nil, nil)
	if err != nil {
		return nil, storage.ProfileMeta{}, true, err
	}
	b := newBuilder()
	b.setTypes(m)
	b.addMeta(m)
	b.p.Comments = append([]string(nil), m.comments...)
	b.p.DropFrames, b.p.KeepFrames, b.p.DocURL = m.dropFrames, m.keepFrames, m.docURL
	pb := b.forPartition(p)
	it := newSampleIter(dec, m)
	for it.next() {
		if int(it.stack) >= len(p.dict.stackEnd) || int(it.lset) > len(p.dict.labelSets) {
			return nil, storage.ProfileMeta{}, true, fmt.Errorf("%w: profile %s in %s refers to an unknown stack or label set", errCorrupt, id, p.f.Name())
		}
		pb.addSample(it.stack, it.lset, append([]int64(nil), it.values...))
	}
	if err := it.err(); err != nil {
		return nil, storage.ProfileMeta{}, true, err
	}
	return b.finish(), metaOf(m.series, m), true, nil
}

// builder builds one pprof profile from the dictionaries of one or more
// partitions, giving equal functions, mappings and locations of different
// partitions one object.
type builder struct {
	p        *profile.Profile
	funcs    map[string]*profile.Function
	maps     map[string]*profile.Mapping
	locs     map[string]*profile.Location
	samples  map[string]*profile.Sample // when merging: by locations and labels
	first    bool
	key      []byte
	minTime  int64
	duration int64
	period   int64
}

func newBuilder() *builder {
	return &builder{p: &profile.Profile{}, funcs: map[string]*profile.Function{}, maps: map[string]*profile.Mapping{}, locs: map[string]*profile.Location{}, first: true}
}

func (b *builder) setTypes(m *profMeta) {
	for _, st := range m.sampleTypes {
		b.p.SampleType = append(b.p.SampleType, &profile.ValueType{Type: st.Type, Unit: st.Unit})
	}
	b.p.DefaultSampleType = m.defaultType
	if m.periodType != (storage.ValueType{}) {
		b.p.PeriodType = &profile.ValueType{Type: m.periodType.Type, Unit: m.periodType.Unit}
	}
}

// addMeta accounts for a profile's time, duration and period as
// profile.Merge does: the earliest time, the sum of durations, the largest
// period.
func (b *builder) addMeta(m *profMeta) {
	if b.first || (m.pprofTime != 0 && m.pprofTime < b.minTime) {
		b.minTime = m.pprofTime
	}
	b.first = false
	b.duration += m.pprofDuration
	if m.period > b.period {
		b.period = m.period
	}
}

func (b *builder) finish() *profile.Profile {
	b.p.TimeNanos, b.p.DurationNanos, b.p.Period = b.minTime, b.duration, b.period
	return b.p
}

// partBuilder converts one partition's ids into the builder's objects.
type partBuilder struct {
	b     *builder
	d     *dict
	locs  []*profile.Location
	funcs []*profile.Function
	maps  []*profile.Mapping
}

func (b *builder) forPartition(p *partition) *partBuilder {
	return &partBuilder{b: b, d: p.dict,
		locs:  make([]*profile.Location, len(p.dict.locations)),
		funcs: make([]*profile.Function, len(p.dict.funcs.items)),
		maps:  make([]*profile.Mapping, len(p.dict.maps.items)),
	}
}

func (pb *partBuilder) addSample(stack, lset uint32, values []int64) {
	ids := pb.d.stack(stack)
	s := &profile.Sample{Value: values, Location: make([]*profile.Location, len(ids))}
	for i, id := range ids {
		s.Location[i] = pb.location(id)
	}
	if lset > 0 {
		ls := &pb.d.labelSets[lset-1]
		for j := 0; j+1 < len(ls.str); j += 2 {
			if s.Label == nil {
				s.Label = map[string][]string{}
			}
			k := pb.d.strs.items[ls.str[j]]
			s.Label[k] = append(s.Label[k], pb.d.strs.items[ls.str[j+1]])
		}
		for _, n := range ls.num {
			if s.NumLabel == nil {
				s.NumLabel, s.NumUnit = map[string][]int64{}, map[string][]string{}
			}
			k := pb.d.strs.items[n.key]
			s.NumLabel[k] = append(s.NumLabel[k], n.value)
			s.NumUnit[k] = append(s.NumUnit[k], pb.d.strs.items[n.unit])
		}
		// pprof omits units that are all empty.
		for k, us := range s.NumUnit {
			empty := true
			for _, u := range us {
				empty = empty && u == ""
			}
			if empty {
				delete(s.NumUnit, k)
			}
		}
		if len(s.NumUnit) == 0 {
			s.NumUnit = nil
		}
	}
	b := pb.b
	if b.samples != nil {
		// Equal stacks of different partitions become one sample.
		key := b.key[:0]
		for _, l := range s.Location {
			key = binary.AppendUvarint(key, l.ID)
		}
		if lset > 0 {
			key = append(key, 0xff)
			for _, k := range sortedKeys(s.Label) {
				key = append(key, k...)
				for _, v := range s.Label[k] {
					key = append(key, 0)
					key = append(key, v...)
				}
				key = append(key, 1)
			}
			for _, k := range sortedKeys(s.NumLabel) {
				key = fmt.Appendf(key, "%s%v%v", k, s.NumLabel[k], s.NumUnit[k])
			}
		}
		b.key = key
		if prev, ok := b.samples[string(key)]; ok {
			for i, v := range s.Value {
				prev.Value[i] += v
			}
			return
		}
		s.Value = slices.Clone(s.Value)
		b.samples[string(key)] = s
	}
	b.p.Sample = append(b.p.Sample, s)
}

func (pb *partBuilder) location(id uint32) *profile.Location {
	if l := pb.locs[id]; l != nil {
		return l
	}
	src := &pb.d.locations[id]
	b := pb.b
	loc := &profile.Location{Address: src.address, IsFolded: src.folded}
	key := b.key[:0]
	if src.mapping > 0 {
		loc.Mapping = pb.mapping(src.mapping - 1)
		key = strconv.AppendUint(key, loc.Mapping.ID, 10)
	}
	key = append(key, '|')
	key = strconv.AppendUint(key, src.address, 16)
	if src.folded {
		key = append(key, 'f')
	}
	for _, ln := range src.lines {
		var f *profile.Function
		if ln.function > 0 {
			f = pb.function(ln.function - 1)
			key = append(key, '|')
			key = strconv.AppendUint(key, f.ID, 10)
		} else {
			key = append(key, "|-"...)
		}
		key = append(key, ':')
		key = strconv.AppendInt(key, ln.line, 10)
		key = append(key, ':')
		key = strconv.AppendInt(key, ln.column, 10)
		loc.Line = append(loc.Line, profile.Line{Function: f, Line: ln.line, Column: ln.column})
	}
	b.key = key
	loc = canonical(b.locs, string(key), loc, func(l *profile.Location) {
		l.ID = uint64(len(b.p.Location) + 1)
		b.p.Location = append(b.p.Location, l)
	})
	pb.locs[id] = loc
	return loc
}

// canonical returns the object of seen under key, or adds v (calling add)
// when there is none: equal objects of different partitions become one.
func canonical[T any](seen map[string]*T, key string, v *T, add func(*T)) *T {
	if g, ok := seen[key]; ok {
		return g
	}
	add(v)
	seen[key] = v
	return v
}

func (pb *partBuilder) function(id uint32) *profile.Function {
	if f := pb.funcs[id]; f != nil {
		return f
	}
	src := &pb.d.funcs.items[id]
	f := &profile.Function{Name: pb.d.strs.items[src.name], SystemName: pb.d.strs.items[src.systemName], Filename: pb.d.strs.items[src.filename], StartLine: src.startLine}
	key := f.Name + "\x00" + f.SystemName + "\x00" + f.Filename + "\x00" + strconv.FormatInt(f.StartLine, 10)
	f = canonical(pb.b.funcs, key, f, func(f *profile.Function) {
		f.ID = uint64(len(pb.b.p.Function) + 1)
		pb.b.p.Function = append(pb.b.p.Function, f)
	})
	pb.funcs[id] = f
	return f
}

func (pb *partBuilder) mapping(id uint32) *profile.Mapping {
	if m := pb.maps[id]; m != nil {
		return m
	}
	src := &pb.d.maps.items[id]
	m := &profile.Mapping{
		Start: src.start, Limit: src.limit, Offset: src.offset,
		File: pb.d.strs.items[src.file], BuildID: pb.d.strs.items[src.buildID],
		HasFunctions: src.flags&1 != 0, HasFilenames: src.flags&2 != 0,
		HasLineNumbers: src.flags&4 != 0, HasInlineFrames: src.flags&8 != 0,
		KernelRelocationSymbol: pb.d.strs.items[src.kernelReloc],
	}
	key := fmt.Sprintf("%x|%x|%x|%d|%s\x00%s\x00%s", m.Start, m.Limit, m.Offset, src.flags, m.File, m.BuildID, m.KernelRelocationSymbol)
	m = canonical(pb.b.maps, key, m, func(m *profile.Mapping) {
		m.ID = uint64(len(pb.b.p.Mapping) + 1)
		pb.b.p.Mapping = append(pb.b.p.Mapping, m)
	})
	pb.maps[id] = m
	return m
}
