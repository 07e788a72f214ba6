package dump

import "strings"

// The runtime prints "fatal error: <message>" (and the "runtime: …" lines
// before it) to standard error only: the copy for SetCrashOutput starts
// with the goroutines (golang/go#76859). A crash file with goroutines but
// no header is therefore a fatal error, and inferFatal names it from its
// frames as well as frames allow.

// inferFatal returns the message for a crash without a header, and
// whether one could be inferred.
func inferFatal(c Crash) (msg string, ok bool) {
	var top []Frame
	if len(c.Goroutines) > 0 {
		top = c.Goroutines[0].Frames
	}
	has := func(frames []Frame, pred func(string) bool) bool {
		for _, f := range frames {
			if pred(f.Function) {
				return true
			}
		}
		return false
	}
	is := func(names ...string) func(string) bool {
		return func(fn string) bool {
			for _, n := range names {
				if strings.Contains(fn, n) {
					return true
				}
			}
			return false
		}
	}
	switch {
	case has(c.RuntimeStack, is("runtime.newstack")):
		return "stack overflow", true
	case has(c.RuntimeStack, is("runtime.sysMap", "runtime.(*mheap).grow", "runtime.(*mheap).sysAlloc", "runtime.persistentalloc")):
		return "runtime: out of memory", true
	}
	for i, f := range top {
		if f.Function != "internal/runtime/maps.fatal" && f.Function != "runtime.fatal" {
			continue
		}
		caller := ""
		if i+1 < len(top) {
			caller = top[i+1].Function
		}
		switch {
		case is("mapaccess", "getWithKey", "Get")(caller):
			return "concurrent map read and map write", true
		case is("mapiter", "Iter")(caller):
			return "concurrent map iteration and map write", true
		case is("mapassign", "mapdelete", "mapclear", "assign", "Delete", "Put")(caller):
			return "concurrent map writes", true
		case f.Function == "internal/runtime/maps.fatal":
			// The map operation's own frame is hidden at GOTRACEBACK=all.
			return "concurrent map access", true
		}
		return "", false
	}
	return "", false
}
