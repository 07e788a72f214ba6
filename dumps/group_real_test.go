package dumps

import (
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/model"
)

// stackFrames returns the calling goroutine's stack as the SDK reports it:
// oldest first, module the package path, function the rest of the name,
// in_app for this package.
func stackFrames() []model.Frame {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(2, pcs)
	it := runtime.CallersFrames(pcs[:n])
	var out []model.Frame
	for {
		f, more := it.Next()
		name := f.Function
		slash := strings.LastIndexByte(name, '/')
		dot := slash + 1 + strings.IndexByte(name[slash+1:], '.')
		out = append([]model.Frame{{Module: name[:dot], Function: name[dot+1:], Line: f.Line,
			InApp: name[:dot] == "github.com/vigilhq/vigil/dumps"}}, out...)
		if !more {
			return out
		}
	}
}

func fail(out *[]model.Frame) { *out = stackFrames() }

// TestGroupRealGoStacks groups stacks Go itself named: two goroutines
// started by two go statements of one function (Go numbers their
// closures .func1 and .func2) are one issue, and so are two nested
// closures (.func3.1, .func4.1).
func TestGroupRealGoStacks(t *testing.T) {
	var a, b, c, d []model.Frame
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fail(&a) }()
	go func() { defer wg.Done(); fail(&b) }()
	wg.Wait()
	func() { func() { fail(&c) }() }()
	func() { func() { fail(&d) }() }()
	dump := func(frames []model.Frame) model.Dump {
		return model.Dump{Service: "s", Exceptions: []model.Exception{{Type: "runtime.Error", Value: "boom", Frames: frames}}}
	}
	names := func(fs []model.Frame) string {
		var out []string
		for _, f := range fs {
			if f.InApp {
				out = append(out, f.Function)
			}
		}
		return strings.Join(out, " ")
	}
	if names(a) == names(b) || names(c) == names(d) || !strings.Contains(names(c), ".func") {
		t.Fatalf("stacks %q, %q, %q, %q; want closures Go numbered apart", names(a), names(b), names(c), names(d))
	}
	for _, p := range [][2][]model.Frame{{a, b}, {c, d}} {
		da, db := dump(p[0]), dump(p[1])
		if ga, gb := Group(&da), Group(&db); ga.IssueID != gb.IssueID {
			t.Errorf("issues %s and %s; want one\nkey: %q\nkey: %q", ga.IssueID, gb.IssueID, ga.Key, gb.Key)
		}
	}
}
