package dump

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// Crash is the text a Go program prints when it dies — an unrecovered
// panic or a fatal runtime error — or the text of runtime.Stack, parsed.
type Crash struct {
	// Kind is "panic", "fatal error" or "signal" (a fatal signal such as
	// SIGQUIT, "SIGQUIT: quit"); empty when the text held goroutines but
	// no header (runtime.Stack output).
	Kind string
	// Message is the fatal error ("concurrent map writes"), the signal
	// ("SIGQUIT: quit"), or the value of the last panic printed.
	Message string
	// Panics are the panic lines, in the order printed: the first panic
	// first, the one that killed the program last.
	Panics []Panic
	// Signal is the "[signal …]" line's content, e.g. "SIGSEGV:
	// segmentation violation code=0x1 addr=0x0 pc=0x48f3a6".
	Signal string
	// Runtime holds the runtime's diagnostic lines printed before the
	// header ("runtime: goroutine stack exceeds 1000000000-byte limit").
	Runtime []string
	// RuntimeStack is the system stack printed under "runtime stack:",
	// newest frame first.
	RuntimeStack []Frame
	// Goroutines in the order printed: the one that crashed first.
	Goroutines []Goroutine
}

// Panic is one "panic: …" line of a crash.
type Panic struct {
	Value string
	// Recovered is set for "[recovered]", Repanicked for "[recovered,
	// repanicked]" (the same value panicked again after a recover).
	Recovered  bool
	Repanicked bool
}

// Goroutine is one goroutine block of a stack dump.
type Goroutine struct {
	ID int64
	// State is the status or wait reason: "running", "chan receive",
	// "sync.Mutex.Lock", "IO wait", …
	State string
	// WaitMinutes is how long it had been blocked ("…, 5 minutes").
	WaitMinutes int
	// LockedToThread is set for ", locked to thread".
	LockedToThread bool
	// Frames are newest first, as printed.
	Frames []Frame
	// Elided is set when the runtime left frames out
	// ("...additional frames elided..." or "...N frames elided...");
	// ElidedFrames is N when it said how many.
	Elided       bool
	ElidedFrames int
	// CreatedBy is the go statement that started it ("created by …"),
	// nil for the main goroutine; CreatorID the goroutine that ran it
	// ("in goroutine N"), 0 when not printed.
	CreatedBy *Frame
	CreatorID int64
	// Note is a line the runtime printed instead of frames, e.g.
	// "goroutine running on other thread; stack unavailable".
	Note string
}

// Frame is one frame of a stack dump.
type Frame struct {
	// Function is the qualified name as printed:
	// "github.com/acme/shop/cart.(*Cart).Add".
	Function string
	// Args is the argument list as printed, without the parentheses
	// ("0xc000012345, {0x4b8a40?, 0x56e4a0?}", or "..." for an inlined
	// call).
	Args string
	File string
	Line int
}

// ErrNoCrash is returned by ParseCrash when the text holds no panic, no
// fatal error and no goroutine.
var ErrNoCrash = errors.New("no panic, fatal error or goroutine found")

// ParseCrash parses the text a Go program prints when it crashes (what
// runtime/debug.SetCrashOutput receives and what goes to stderr) or the
// output of runtime.Stack. It is lenient: lines it does not know are
// skipped, so a crash preceded or followed by other output still parses.
// It returns ErrNoCrash when nothing was recognised.
func ParseCrash(text []byte) (Crash, error) {
	var c Crash
	p := crashParser{c: &c}
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		p.line(string(bytes.TrimRight(line, "\r")))
	}
	p.flush()
	if c.Kind == "" && len(c.Goroutines) == 0 {
		return c, ErrNoCrash
	}
	return c, nil
}

type crashParserState int

const (
	stHeader       crashParserState = iota // before or between blocks
	stGoroutine                            // inside a goroutine block
	stRuntimeStack                         // inside "runtime stack:"
)

type crashParser struct {
	c       *Crash
	state   crashParserState
	g       *Goroutine
	frames  *[]Frame
	pending *Frame // a function line waiting for its file line
	inPanic bool   // a panic value may continue on the next "\t" line
}

func (p *crashParser) flush() {
	p.pending = nil
	if p.g != nil {
		p.c.Goroutines = append(p.c.Goroutines, *p.g)
		p.g = nil
	}
	p.frames = nil
	p.state = stHeader
}

func (p *crashParser) line(l string) {
	if id, rest, ok := goroutineHeader(l); ok {
		p.flush()
		p.inPanic = false
		g := parseGoroutineState(rest)
		g.ID = id
		p.g = &g
		p.frames = &p.g.Frames
		p.state = stGoroutine
		return
	}
	switch p.state {
	case stGoroutine, stRuntimeStack:
		if l == "" {
			p.flush()
			return
		}
		p.frameLine(l)
		return
	}
	// Header area.
	switch {
	case l == "":
		p.inPanic = false
	case strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "\tpanic: "):
		p.addPanic(strings.TrimPrefix(strings.TrimPrefix(l, "\t"), "panic: "))
	case p.inPanic && strings.HasPrefix(l, "\t"):
		// A multi-line panic value: the runtime indents every line
		// after the first with a tab.
		last := &p.c.Panics[len(p.c.Panics)-1]
		v, rec, rep := panicSuffix(last.Value + "\n" + l[1:])
		last.Value, last.Recovered, last.Repanicked = v, last.Recovered || rec, last.Repanicked || rep
		p.c.Message = last.Value
	case strings.HasPrefix(l, "fatal error: "):
		p.inPanic = false
		p.c.Kind = "fatal error"
		p.c.Message = strings.TrimPrefix(l, "fatal error: ")
	case strings.HasPrefix(l, "[signal ") && strings.HasSuffix(l, "]"):
		p.inPanic = false
		p.c.Signal = l[len("[signal ") : len(l)-1]
	case l == "runtime stack:":
		p.flush()
		p.frames = &p.c.RuntimeStack
		p.state = stRuntimeStack
	case strings.HasPrefix(l, "runtime: "):
		p.inPanic = false
		p.c.Runtime = append(p.c.Runtime, l)
	case isSignalHeader(l):
		p.inPanic = false
		if p.c.Kind == "" {
			p.c.Kind = "signal"
			p.c.Message = l
		}
	default:
		p.inPanic = false
	}
}

func (p *crashParser) addPanic(v string) {
	v, rec, rep := panicSuffix(v)
	p.c.Panics = append(p.c.Panics, Panic{Value: v, Recovered: rec, Repanicked: rep})
	if p.c.Kind == "" || p.c.Kind == "panic" {
		p.c.Kind = "panic"
		p.c.Message = v
	}
	p.inPanic = true
}

// panicSuffix strips the " [recovered]" or " [recovered, repanicked]"
// the runtime appends to a panic value.
func panicSuffix(v string) (value string, recovered, repanicked bool) {
	if s, ok := strings.CutSuffix(v, " [recovered, repanicked]"); ok {
		return s, true, true
	}
	if s, ok := strings.CutSuffix(v, " [recovered]"); ok {
		return s, true, false
	}
	return v, false, false
}

// isSignalHeader reports whether l is the first line of a fatal signal
// dump, e.g. "SIGQUIT: quit" or "SIGABRT: abort".
func isSignalHeader(l string) bool {
	name, _, ok := strings.Cut(l, ": ")
	if !ok || len(name) < 4 || !strings.HasPrefix(name, "SIG") {
		return false
	}
	for _, r := range name[3:] {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func (p *crashParser) frameLine(l string) {
	if strings.HasPrefix(l, "\t") {
		if p.pending == nil {
			return
		}
		p.pending.File, p.pending.Line = fileLine(l[1:])
		p.pending = nil
		return
	}
	p.pending = nil
	switch {
	case strings.HasPrefix(l, "created by "):
		if p.g == nil {
			return
		}
		rest := strings.TrimPrefix(l, "created by ")
		if i := strings.LastIndex(rest, " in goroutine "); i >= 0 {
			p.g.CreatorID, _ = strconv.ParseInt(rest[i+len(" in goroutine "):], 10, 64)
			rest = rest[:i]
		}
		p.g.CreatedBy = &Frame{Function: rest}
		p.pending = p.g.CreatedBy
	case strings.HasPrefix(l, "...") && strings.HasSuffix(l, "elided..."):
		if p.g != nil {
			p.g.Elided = true
			if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "..."), " frames elided...")); err == nil {
				p.g.ElidedFrames += n
			}
		}
	case strings.HasPrefix(l, "[originating from goroutine "):
		// Ancestor tracebacks (GODEBUG=tracebackancestors): not frames
		// of this goroutine.
		p.frames = nil
	case p.frames == nil:
	case strings.HasPrefix(l, "goroutine running on other thread"):
		if p.g != nil {
			p.g.Note = l
		}
	default:
		fn, args := funcArgs(l)
		*p.frames = append(*p.frames, Frame{Function: fn, Args: args})
		p.pending = &(*p.frames)[len(*p.frames)-1]
	}
}

// goroutineHeader recognises "goroutine 7 [running]:" and
// "goroutine 7 gp=0xc000007a40 m=3 mp=0xc000100008 [running]:" and returns
// the id and the text inside the brackets.
func goroutineHeader(l string) (id int64, state string, ok bool) {
	rest, ok := strings.CutPrefix(l, "goroutine ")
	if !ok || !strings.HasSuffix(rest, "]:") {
		return 0, "", false
	}
	end := strings.IndexAny(rest, " [")
	if end <= 0 {
		return 0, "", false
	}
	id, err := strconv.ParseInt(rest[:end], 10, 64)
	if err != nil {
		return 0, "", false
	}
	open := strings.Index(rest, "[")
	if open < 0 {
		return 0, "", false
	}
	return id, rest[open+1 : len(rest)-2], true
}

// parseGoroutineState splits "chan receive, 5 minutes, locked to thread".
// Labels ("labels:{…}") and other additions are left in State's tail
// only when unknown.
func parseGoroutineState(s string) Goroutine {
	var g Goroutine
	parts := strings.Split(s, ", ")
	g.State = parts[0]
	for _, part := range parts[1:] {
		switch {
		case strings.HasSuffix(part, " minutes"):
			g.WaitMinutes, _ = strconv.Atoi(strings.TrimSuffix(part, " minutes"))
		case part == "locked to thread":
			g.LockedToThread = true
		}
	}
	return g
}

// funcArgs splits "main.(*T).M(0x1, {0x2, 0x3})" into the function and
// its argument list.
func funcArgs(l string) (fn, args string) {
	if !strings.HasSuffix(l, ")") {
		return l, ""
	}
	depth := 0
	for i := len(l) - 1; i >= 0; i-- {
		switch l[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				if i == 0 {
					return l, ""
				}
				return l[:i], l[i+1 : len(l)-1]
			}
		}
	}
	return l, ""
}

// fileLine splits "/src/app/main.go:17 +0x1d fp=0x… sp=0x… pc=0x…".
func fileLine(s string) (string, int) {
	if i := strings.Index(s, " +0x"); i >= 0 {
		s = s[:i]
	} else if i := strings.Index(s, " fp=0x"); i >= 0 {
		s = s[:i]
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}
