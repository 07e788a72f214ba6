package spanstore

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func withSeal(n int) func(*Options) { return func(o *Options) { o.sealSpans = n } }

// segFiles returns the index segments of day0's partition in dir.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, dayName(dayOf(day0)), segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeTraces writes traces [from, to) of 3 spans each, one batch a trace.
func writeTraces(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		var batch []model.Span
		for j := 1; j <= 3; j++ {
			sp := span(uint64(i), uint64(j), "svc", "op", day0+int64(i)*1e6+int64(j), int64(j))
			sp.Attributes = []model.TypedAttr{{Key: "n", Type: model.AttrInt64, Int: int64(i)}}
			if j > 1 {
				sp.ParentSpanID = sid(1)
			}
			batch = append(batch, sp)
		}
		write(t, s, batch...)
	}
}

// checkTraces checks that traces [0, n) each have 3 spans and are found by
// their tag.
func checkTraces(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		got, err := s.GetTrace(ctx, tid(uint64(i)))
		if err != nil || len(got) != 3 {
			t.Fatalf("trace %d: got %d spans, %v; want 3", i, len(got), err)
		}
	}
	for _, i := range []int{0, n / 2, n - 1} {
		got, err := s.FindTraces(ctx, storage.TraceQuery{Service: "svc", Tags: map[string]string{"n": model.TypedAttr{Type: model.AttrInt64, Int: int64(i)}.ValueString()}})
		if err != nil || len(got) != 1 || got[0][0].TraceID != tid(uint64(i)) || len(got[0]) != 3 {
			t.Fatalf("search of trace %d: got %d traces, %v", i, len(got), err)
		}
	}
	if got, _ := s.FindTraces(ctx, storage.TraceQuery{Service: "svc"}); len(got) != n {
		t.Fatalf("service search: got %d traces, want %d", len(got), n)
	}
}

// TestSealAndReopen checks that sealed segments serve reads, are reused at
// open without indexing their blocks again, and still deduplicate. (A head
// lost in a crash is indexed again at open: TestCrashKill9.)
func TestSealAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, withSeal(10))
	writeTraces(t, s, 0, 50)
	if n := len(segFiles(t, dir)); n != 50*3/12 {
		t.Fatalf("got %d segments, want %d", n, 50*3/12)
	}
	checkTraces(t, s, 50)
	s.Close() // seals the head too
	written := s.parts[dayOf(day0)].segs
	if n := len(written); n != 50*3/12+1 {
		t.Fatalf("after Close: got %d segments, want %d", n, 50*3/12+1)
	}

	s = openStore(t, dir, withSeal(10))
	p := s.parts[dayOf(day0)]
	// The summary built while writing a segment is the one read at open.
	for i, sg := range p.segs {
		a, b := *sg, *written[i]
		a.f, b.f = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("segment %d: read at open %+v\nbuilt when written %+v", i, a, b)
		}
	}
	if got := len(p.h.metas); got != 0 {
		t.Fatalf("head after reopen holds %d spans, want 0: segments not reused", got)
	}
	checkTraces(t, s, 50)
	writeTraces(t, s, 0, 50) // every span redelivered
	checkTraces(t, s, 50)
	if got := p.spans(); got != 150 {
		t.Fatalf("after redelivery: %d spans stored, want 150", got)
	}
}

// TestLostOrCorruptIndex damages segments in the ways a crash or a bad disk
// can, and checks that open rebuilds them from the span file.
func TestLostOrCorruptIndex(t *testing.T) {
	for _, damage := range []struct {
		name string
		f    func(t *testing.T, segs []string)
	}{
		{"missing", func(t *testing.T, segs []string) { os.Remove(segs[1]) }},
		{"torn", func(t *testing.T, segs []string) {
			fi, _ := os.Stat(segs[0])
			os.Truncate(segs[0], fi.Size()/2)
		}},
		{"flipped byte", func(t *testing.T, segs []string) {
			b, _ := os.ReadFile(segs[2])
			b[len(b)/3] ^= 0x40
			os.WriteFile(segs[2], b, 0o644)
		}},
		{"empty", func(t *testing.T, segs []string) { os.WriteFile(segs[0], nil, 0o644) }},
		{"leftover temporary file", func(t *testing.T, segs []string) {
			os.WriteFile(segs[0]+tmpSuffix, []byte("half"), 0o644)
		}},
		{"beyond the span file", func(t *testing.T, segs []string) {
			last := segs[len(segs)-1]
			_, end, _ := parseSegName(filepath.Base(last))
			os.Truncate(filepath.Join(filepath.Dir(last), dataFile), end-1)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, withSeal(10))
			writeTraces(t, s, 0, 40) // 10 segments of 12 spans
			s.Close()
			segs := segFiles(t, dir)
			damage.f(t, segs)
			s = openStore(t, dir, withSeal(10))
			n := 40
			if strings.HasPrefix(damage.name, "beyond") {
				// The last segment ends with the file: it is cut inside
				// the last trace's block.
				n = 39
			}
			checkTraces(t, s, n)
			if got := s.parts[dayOf(day0)].spans(); got != 3*n {
				t.Fatalf("%d spans indexed, want %d", got, 3*n)
			}
			if _, err := os.Stat(segs[0] + tmpSuffix); !os.IsNotExist(err) {
				t.Fatalf("temporary file left: %v", err)
			}
			s.Close()
			s = openStore(t, dir, withSeal(10)) // and the rebuilt index is reused
			checkTraces(t, s, n)
		})
	}
}

func TestSegmentRejectsCorrupt(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, withSeal(1))
	write(t, s, fullSpan())
	s.Close()
	segs, err := filepath.Glob(filepath.Join(dir, "*", segPrefix+"*"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("got segments %v, %v", segs, err)
	}
	data, _ := os.ReadFile(segs[0])
	for i := range data {
		for _, b := range []byte{0x01, 0x80} {
			bad := append([]byte(nil), data...)
			bad[i] ^= b
			path := filepath.Join(t.TempDir(), "seg")
			os.WriteFile(path, bad, 0o644)
			if sg, err := openSegment(path); err == nil {
				sg.f.Close()
				t.Fatalf("byte %d ^ %#x: opened a corrupt segment", i, b)
			}
		}
	}
}

// TestDedupAcrossDays redelivers a trace that spans midnight once its
// spans are sealed in two days' segments.
func TestDedupAcrossDays(t *testing.T) {
	s := openStore(t, t.TempDir(), withSeal(1))
	a := span(1, 1, "svc", "op", day0+nsPerDay-1, 2)
	b := span(1, 2, "svc", "op", day0+nsPerDay+1, 2)
	write(t, s, a, b)
	write(t, s, a, b)
	got, err := s.GetTrace(context.Background(), tid(1))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %d spans, %v; want 2", len(got), err)
	}
}
