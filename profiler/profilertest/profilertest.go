// Package profilertest helps test profile scraping against a real Go
// service: a function that burns CPU where a profile must find it, the
// handlers of net/http/pprof, selections, and the leaf function a merged
// profile spends the most in.
package profilertest

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

//lint:ignore U1000 a sink written so that the compiler keeps the CPU burn
var sink float64

// BurnCPU spins until stop is closed: the function a CPU profile of the
// process must find on top.
//
//go:noinline
func BurnCPU(stop <-chan struct{}) {
	x := 1.0
	for {
		select {
		case <-stop:
			sink = x
			return
		default:
		}
		for i := 0; i < 100000; i++ {
			x = math.Sqrt(x*x + float64(i))
		}
	}
}

// held keeps what HoldHeap allocated alive, so that heap profiles show it
// in use.
var held [][]byte

// HoldHeap allocates 64 MiB in 1 MiB pieces and keeps them until release
// is called: the allocation site a heap profile of the process must find
// on top of inuse_space.
//
//go:noinline
func HoldHeap() (release func()) {
	for range 64 {
		held = append(held, make([]byte, 1<<20))
	}
	return func() { held = nil }
}

// PprofMux serves net/http/pprof's handlers under /debug/pprof/, as a
// service that imports net/http/pprof does.
func PprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// FlatByFunction sums the values of sample type st by leaf function.
func FlatByFunction(p *profile.Profile, st string) map[string]int64 {
	idx := -1
	for i, s := range p.SampleType {
		if s.Type == st {
			idx = i
		}
	}
	out := map[string]int64{}
	if idx < 0 {
		return out
	}
	for _, s := range p.Sample {
		if len(s.Location) == 0 || len(s.Location[0].Line) == 0 || s.Location[0].Line[0].Function == nil {
			continue
		}
		out[s.Location[0].Line[0].Function.Name] += s.Value[idx]
	}
	return out
}

// Top returns the leaf function with the largest value of sample type st
// in p, and that value; "" when p has no such samples.
func Top(p *profile.Profile, st string) (string, int64) {
	flat := FlatByFunction(p, st)
	names := make([]string, 0, len(flat))
	for k := range flat {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return flat[names[i]] > flat[names[j]] })
	if len(names) == 0 {
		return "", 0
	}
	return names[0], flat[names[0]]
}

// StartService starts a real Go service in this process for the length of
// the test: a goroutine burning CPU in BurnCPU, 64 MiB held by HoldHeap
// and net/http/pprof's handlers on a test server. It returns the server's host:port and a
// function that stops the service before the test ends.
func StartService(t testing.TB) (string, func()) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); BurnCPU(stop) }()
	release := HoldHeap()
	srv := httptest.NewServer(PprofMux())
	var once sync.Once
	end := func() {
		once.Do(func() {
			release()
			srv.CloseClientConnections()
			srv.Close()
			close(stop)
			wg.Wait()
		})
	}
	t.Cleanup(end)
	return strings.TrimPrefix(srv.URL, "http://"), end
}

// Selector selects the profiles of type typ ("" for all) whose labels
// equal the name, value pairs kv.
func Selector(t testing.TB, typ string, kv ...string) storage.ProfileSelector {
	t.Helper()
	sel := storage.ProfileSelector{Type: typ}
	for i := 0; i+1 < len(kv); i += 2 {
		m, err := model.NewLabelMatcher(kv[i], model.MatchEqual, kv[i+1])
		if err != nil {
			t.Fatal(err)
		}
		sel.Matchers = append(sel.Matchers, m)
	}
	return sel
}
