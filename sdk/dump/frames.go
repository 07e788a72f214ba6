package dump

import (
	"strconv"
	"strings"
)

// sdkModule is this SDK's module path: its frames are never the
// application's, even in a service built inside the Vigil module.
const sdkModule = "github.com/vigilhq/vigil/sdk"

// splitFunction splits "github.com/acme/shop/cart.(*Cart).Add" into the
// package path "github.com/acme/shop/cart" and "(*Cart).Add". Dots in a
// path's last element are printed escaped ("gopkg.in/yaml%2ev3.Unmarshal").
func splitFunction(name string) (pkg, fn string) {
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return "", name
	}
	return strings.ReplaceAll(name[:slash+1+dot], "%2e", "."), name[slash+1+dot+1:]
}

// inApp reports whether a package path is the application's own code.
func inApp(pkg string, prefixes []string) bool {
	if (pkg == sdkModule || strings.HasPrefix(pkg, sdkModule+"/")) && !strings.HasSuffix(pkg, "_test") {
		return false
	}
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// shortFile is the file name Sentry shows: the path inside its module
// (after "/pkg/mod/" or GOROOT's "/src/"), else the full path.
func shortFile(path string) string {
	if i := strings.LastIndex(path, "/pkg/mod/"); i >= 0 {
		return path[i+len("/pkg/mod/"):]
	}
	if i := strings.LastIndex(path, "/go/src/"); i >= 0 {
		return path[i+len("/go/src/"):]
	}
	return path
}

// sentryFrames converts frames printed newest first into Sentry's order,
// oldest first.
func sentryFrames(frames []Frame, createdBy *Frame, prefixes []string) []sentryFrame {
	out := make([]sentryFrame, 0, len(frames)+1)
	if createdBy != nil {
		out = append(out, toSentryFrame(*createdBy, prefixes))
	}
	for i := len(frames) - 1; i >= 0; i-- {
		out = append(out, toSentryFrame(frames[i], prefixes))
	}
	return out
}

func toSentryFrame(f Frame, prefixes []string) sentryFrame {
	pkg, fn := splitFunction(f.Function)
	return sentryFrame{
		Function: fn,
		Module:   pkg,
		Filename: shortFile(f.File),
		AbsPath:  f.File,
		Lineno:   f.Line,
		InApp:    inApp(pkg, prefixes),
	}
}

// goroutineThread converts a goroutine to a Sentry thread.
func goroutineThread(g Goroutine, prefixes []string) thread {
	t := thread{
		ID:    strconv.FormatInt(g.ID, 10),
		Name:  "goroutine " + strconv.FormatInt(g.ID, 10),
		State: g.State,
		Main:  g.ID == 1,
	}
	if g.WaitMinutes > 0 {
		t.State += ", " + strconv.Itoa(g.WaitMinutes) + " minutes"
	}
	if fr := sentryFrames(g.Frames, g.CreatedBy, prefixes); len(fr) > 0 {
		t.Stacktrace = &stacktrace{Frames: fr}
	}
	return t
}

// trimPanicFrames drops, from a stack printed newest first inside a
// deferred recover, the frames of the recovery itself: everything up to
// and including the runtime's "panic" frame. A stack without one is
// returned as it is.
func trimPanicFrames(frames []Frame) []Frame {
	for i, f := range frames {
		if f.Function == "panic" || f.Function == "runtime.gopanic" {
			return frames[i+1:]
		}
	}
	return frames
}
