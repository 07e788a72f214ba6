package profilestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/storage"
)

// A write that fails after its records reached the file (a failed fsync)
// is undone: the file is cut back, the dictionaries forget what it added,
// and nothing of it is visible; the same profiles can be written again.
func TestFailedWriteIsUndone(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions(dir)
	var fail error
	opts.failWrite = func() error { return fail }
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := series360(newProgram(20, 200, 300), 3, t0, true)
	other := series360(newProgram(21, 200, 300), 1, t0+100e9, true) // new symbols
	write(t, s, ps[0])
	p := s.parts[dayOf(t0)]
	mark, size := p.dict.mark(), p.size

	fail = errors.New("injected fsync failure")
	if err := s.Write(context.Background(), append(other, ps[1])); err == nil {
		t.Fatal("the failed write returned nil")
	}
	if got := p.dict.mark(); got != mark {
		t.Fatalf("dictionaries after the failed write: got %+v, want %+v", got, mark)
	}
	fi, _ := os.Stat(filepath.Join(dir, dayName(dayOf(t0)), dataFileName))
	if p.size != size || fi.Size() != size {
		t.Fatalf("file after the failed write: %d bytes (index says %d), want %d", fi.Size(), p.size, size)
	}
	if st := s.DiskStats(); st.Profiles != 1 {
		t.Fatalf("got %d profiles visible, want 1", st.Profiles)
	}

	fail = nil
	write(t, s, other[0], ps[1], ps[2])
	if p.dict.mark() == mark {
		t.Fatal("the profiles added no symbols: the failed write had nothing to undo")
	}
	s.Close()
	s = openStore(t, dir)
	defer s.Close()
	for _, in := range append(ps, other...) {
		got, _, err := s.Profile(context.Background(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sampleKeys(got), sampleKeys(mustParse(t, in.Pprof))) {
			t.Fatalf("profile %s differs", in.ID)
		}
	}
}

// Writers and readers at once (run with -race): every merge sees whole
// profiles only.
func TestConcurrentWriteAndMerge(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	ps := series360(newProgram(22, 200, 300), 24, t0, false)
	var per []int64
	for _, p := range ps {
		per = append(per, totals(mustParse(t, p.Pprof))[0])
	}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(ps); i += 2 {
				if err := s.Write(context.Background(), ps[i:i+1]); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true
		default:
		}
		metas, err := s.Profiles(context.Background(), storage.ProfileSelector{Type: "cpu"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, m := range metas {
			want += m.Totals[0]
		}
		var q storage.MergeQuery
		q.Type = "cpu"
		for _, m := range metas {
			q.ProfileIDs = append(q.ProfileIDs, m.ID)
		}
		if len(q.ProfileIDs) == 0 {
			continue
		}
		got, err := s.Merge(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if g := totals(got)[0]; g != want {
			t.Fatalf("merge of %d profiles: total %d, want %d", len(metas), g, want)
		}
	}
	var all int64
	for _, v := range per {
		all += v
	}
	got, err := s.Merge(context.Background(), storage.MergeQuery{ProfileSelector: storage.ProfileSelector{Type: "cpu"}})
	if err != nil || totals(got)[0] != all {
		t.Fatalf("final merge: %v, %v; want total %d", totals(got), err, all)
	}
}
