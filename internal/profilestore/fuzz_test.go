package profilestore

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
)

// FuzzDecodePprof feeds outside pprof bytes through the store's whole
// path: decode, intern, encode a record, replay it into fresh dictionaries
// and build the profile back; what was accepted must read back with the
// same samples.
func FuzzDecodePprof(f *testing.F) {
	f.Add(newProgram(1, 20, 20).CPUProfile(0, t0, true))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pp, err := decodePprof(b, 1<<20)
		if err != nil {
			return
		}
		mp := model.NewProfile("cpu", map[string]string{"service": "fuzz"}, t0, 0, b)
		d := newDict()
		rec, m := newEncoder().encode(nil, d, &mp, pp)

		// Replay the record into an empty partition.
		p := &partition{dict: newDict(), series: map[string]*series{}, byID: map[model.RecordID]*profMeta{}}
		payload := rec[recordHeader:]
		var scratch []byte
		rm, err := p.applyRecord(payload, 0, &scratch)
		if err != nil {
			t.Fatalf("the record of an accepted profile does not replay: %v", err)
		}
		if rm.bLen != m.bLen || !reflect.DeepEqual(rm.totals, m.totals) {
			t.Fatalf("replayed metadata differs: %+v != %+v", rm, m)
		}
		samples, err := zdec.DecodeAll(payload[len(payload)-int(rm.bLen):], nil)
		if err != nil {
			t.Fatal(err)
		}
		b2 := newBuilder()
		b2.setTypes(rm)
		pb := b2.forPartition(p)
		it := newSampleIter(samples, rm)
		for it.next() {
			if int(it.stack) >= len(p.dict.stackEnd) || int(it.lset) > len(p.dict.labelSets) {
				t.Fatal("a sample refers to an unknown stack or label set")
			}
			pb.addSample(it.stack, it.lset, append([]int64(nil), it.values...))
		}
		if err := it.err(); err != nil {
			t.Fatal(err)
		}
		got := b2.finish()
		var buf bytes.Buffer
		if err := got.Write(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := profile.Parse(&buf)
		if err != nil {
			t.Fatalf("the profile read back does not parse: %v", err)
		}
		if g, w := sampleKeys(back), sampleKeys(pp); !reflect.DeepEqual(g, w) {
			t.Fatalf("samples differ:\n got %q\nwant %q", g, w)
		}
	})
}

// The record reader must refuse, not panic on, corrupt section A bytes.
func FuzzSectionA(f *testing.F) {
	mp := model.NewProfile("cpu", map[string]string{"service": "fuzz"}, t0, 0, nil)
	pp, _ := decodePprof(newProgram(2, 20, 20).CPUProfile(0, t0, true), 1<<20)
	enc := newEncoder()
	enc.encode(nil, newDict(), &mp, pp)
	f.Add(append([]byte(nil), enc.a...))
	f.Fuzz(func(t *testing.T, a []byte) {
		d := newDict()
		m, _, _, err := decodeSectionA(a, d)
		if err != nil {
			return
		}
		// Every id the dictionaries hold refers to entries that exist.
		for i := range d.stackEnd {
			for _, l := range d.stack(uint32(i)) {
				if int(l) >= len(d.locations) {
					t.Fatalf("stack %d refers to location %d of %d", i, l, len(d.locations))
				}
			}
		}
		if len(m.totals) != len(m.sampleTypes) {
			t.Fatalf("%d totals for %d sample types", len(m.totals), len(m.sampleTypes))
		}
	})
}
