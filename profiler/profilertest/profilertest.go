// Package profilertest helps test profile scraping against a real Go
// service: a function that burns CPU where a profile must find it, the
// handlers of net/http/pprof, and the leaf function a merged profile spends
// the most in.
package profilertest

import (
	"math"
	"net/http"
	"net/http/pprof"
	"sort"

	"github.com/google/pprof/profile"
)

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
