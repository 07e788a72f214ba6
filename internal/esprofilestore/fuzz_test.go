package esprofilestore

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/profiletest"
)

// FuzzProfileDocument feeds outside pprof bytes through the store's whole
// path but Elasticsearch: decode, build the document (gzipping a plain
// profile), encode it as the bulk request does, parse it back as a search
// answer is parsed, and decode the stored pprof; what was accepted must
// come back with the same samples, totals and labels.
func FuzzProfileDocument(f *testing.F) {
	f.Add(profiletest.NewProgram(1, 20, 20).CPUProfile(0, profiletest.T0, true))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte{})
	s := &Store{opts: Options{MaxDecodedBytes: 1 << 20}}
	f.Fuzz(func(t *testing.T, b []byte) {
		pp, err := storage.DecodePprof(b, 1<<20)
		if err != nil {
			return
		}
		p := model.NewProfile("cpu", map[string]string{"service": "fuzz", "a=b": "c"}, profiletest.T0, 0, b)
		d, err := toDoc(&p, pp)
		if err != nil {
			t.Fatal(err)
		}
		line, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseDoc(d.ID, line)
		if err != nil {
			t.Fatalf("the document of an accepted profile does not parse: %v", err)
		}
		got, err := s.decode(back)
		if err != nil {
			t.Fatalf("the stored pprof of an accepted profile does not decode: %v", err)
		}
		if len(got.Sample) != len(pp.Sample) || !reflect.DeepEqual(profiletest.Totals(got), back.Totals) {
			t.Fatalf("read back %d samples with totals %v; wrote %d with %v", len(got.Sample), profiletest.Totals(got), len(pp.Sample), back.Totals)
		}
		m, err := back.meta()
		if err != nil || m.ID != p.ID || !reflect.DeepEqual(m.Labels, p.Labels) {
			t.Fatalf("meta read back: %+v, %v; want id %s labels %v", m, err, p.ID, p.Labels)
		}
	})
}
