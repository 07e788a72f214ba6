package dump

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParseCrash(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "crashes", "*.txt"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/crashes: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(stripHeader(b))
	}
	f.Add([]byte("panic: a [recovered]\n\tpanic: b\n\tline2 [recovered, repanicked]\n[signal SIGSEGV: segmentation violation]\n\ngoroutine 1 [running]:\nmain.main()\n\t/a.go:1 +0x1\n"))
	f.Add([]byte("SIGQUIT: quit\nPC=0x0 m=0 sigcode=0\n\ngoroutine 0 gp=0x1 m=0 mp=0x2 [idle]:\n"))
	f.Add([]byte("goroutine 5 [select, 3 minutes, locked to thread]:\n...additional frames elided...\ncreated by x in goroutine 2\n\t?:0\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseCrash(text)
		if err != nil {
			if !errors.Is(err, ErrNoCrash) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if c.Kind == "" && len(c.Goroutines) == 0 {
			t.Fatal("no error, yet nothing parsed")
		}
		for _, g := range c.Goroutines {
			for _, fr := range g.Frames {
				if fr.Function == "" && fr.File != "" {
					t.Fatalf("frame with a file and no function: %+v", fr)
				}
			}
		}
		// What the parser produced must turn into an event.
		r := &Reporter{opts: Options{Service: "s", MaxGoroutines: 10, MaxEventBytes: 1 << 20, InAppPrefixes: []string{"main"}}}
		ev := r.crashEvent(c, nil, text, crashMeta{}, fuzzTime)
		if ev.Exception == nil || len(ev.Exception.Values) == 0 {
			t.Fatal("no exception in the event")
		}
		if _, err := r.marshalBounded(ev); err != nil {
			t.Fatal(err)
		}
	})
}

var fuzzTime = time.Unix(1e9, 0)
