package dump

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// staticInfo is what every event of a process carries, computed once.
type staticInfo struct {
	modules  map[string]string
	runtime  map[string]any
	os       map[string]any
	device   map[string]any
	redact   map[string]bool
	mainPath string
}

func newStaticInfo(o Options) staticInfo {
	s := staticInfo{
		runtime: map[string]any{"name": "go", "version": runtime.Version()},
		os:      map[string]any{"name": runtime.GOOS},
		device:  map[string]any{"arch": runtime.GOARCH, "num_cpu": runtime.NumCPU()},
		redact:  make(map[string]bool),
	}
	for _, h := range DefaultRedactHeaders {
		s.redact[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range o.RedactHeaders {
		s.redact[http.CanonicalHeaderKey(h)] = true
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		s.modules = make(map[string]string, len(bi.Deps)+1)
		s.mainPath = bi.Main.Path
		if bi.Main.Path != "" {
			s.modules[bi.Main.Path] = bi.Main.Version
		}
		for _, m := range bi.Deps {
			v := m.Version
			if m.Replace != nil {
				v += " => " + m.Replace.Path + " " + m.Replace.Version
			}
			s.modules[m.Path] = strings.TrimSpace(v)
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s.runtime["build_revision"] = kv.Value
			}
		}
	}
	return s
}

// newEvent fills what every event carries. ver and rel override the
// configured version and release (a crash of an earlier build).
func (r *Reporter) newEvent(level string, ts time.Time, ver, rel, env string) *event {
	o := &r.opts
	tags := map[string]string{"service": o.Service}
	if o.Grade > 0 {
		tags["grade"] = strconv.Itoa(o.Grade)
	}
	if env != "" {
		tags["env"] = env
	}
	if ver != "" {
		tags["version"] = ver
	}
	if o.ServerName != "" {
		tags["host"] = o.ServerName
	}
	return &event{
		EventID:     newEventID(),
		Timestamp:   ts.UTC().Format(time.RFC3339Nano),
		Platform:    "go",
		Level:       level,
		ServerName:  o.ServerName,
		Release:     rel,
		Environment: env,
		Tags:        tags,
		Contexts:    map[string]any{"runtime": r.static.runtime, "os": r.static.os, "device": r.static.device},
		Modules:     r.static.modules,
		SDK:         sdkInfo{Name: sdkName, Version: Version},
	}
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Recovered reports a panic recovered by the caller and returns the
// report's event id ("" when v is nil — there was no panic — or
// http.ErrAbortHandler). v is what
// recover returned; stack is runtime/debug.Stack() taken in the deferred
// function, or nil to take it here; req is the request being served, or
// nil. ctx carries the trace (Options.TraceContext). The report is on
// disk when Recovered returns; it is delivered in the background. A nil
// Reporter reports nothing.
//
// Call it from the deferred function that recovered, so that the stack
// still shows the panic:
//
//	defer func() {
//		if v := recover(); v != nil {
//			rep.Recovered(ctx, v, nil, r)
//			w.WriteHeader(http.StatusInternalServerError)
//		}
//	}()
func (r *Reporter) Recovered(ctx context.Context, v any, stack []byte, req *http.Request) string {
	return r.Capture(ctx, Report{Value: v, Stack: stack, Request: req})
}

// Report describes a recovered panic for Capture.
type Report struct {
	// Value is what recover returned.
	Value any
	// Stack is runtime/debug.Stack() taken in the deferred function, or
	// nil to take it in Capture.
	Stack []byte
	// Request is the HTTP request being served, or nil.
	Request *http.Request
	// Transaction names what was being served when there is no HTTP
	// request — a gRPC method ("/shop.Cart/Add"), a job — and becomes the
	// event's transaction and "route" tag.
	Transaction string
	// Tags are added to the event's tags (service, grade, env, version
	// and host win).
	Tags map[string]string
}

// Capture is Recovered with more to say: see Report.
func (r *Reporter) Capture(ctx context.Context, p Report) string {
	if r == nil || p.Value == nil || p.Value == http.ErrAbortHandler {
		// No panic, or net/http's way to abort a response, which it
		// does not log either.
		return ""
	}
	ev := r.panicEvent(ctx, p.Value, p.Stack, p.Request)
	if ev.Transaction == "" && p.Transaction != "" {
		ev.Transaction = p.Transaction
		ev.Tags["route"] = p.Transaction
	}
	for k, v := range p.Tags {
		if _, ok := ev.Tags[k]; !ok {
			ev.Tags[k] = v
		}
	}
	if r.spoolEvent(ev, "panic") == nil && ev.Exception != nil {
		r.noteReported(ev.Exception.Values[len(ev.Exception.Values)-1].Value)
	}
	return ev.EventID
}

// panicEvent describes a recovered panic.
func (r *Reporter) panicEvent(ctx context.Context, v any, stack []byte, req *http.Request) *event {
	all, _ := ParseCrash(allStacks())
	var current Goroutine
	others := all.Goroutines
	if len(others) > 0 {
		current, others = others[0], others[1:]
	}
	if stack != nil {
		if c, err := ParseCrash(stack); err == nil && len(c.Goroutines) > 0 {
			current = c.Goroutines[0]
		}
	}
	current.Frames = trimRecoverFrames(current.Frames)

	ev := r.newEvent("error", time.Now(), r.opts.Version, r.opts.Release, r.opts.Env)
	handled := false
	exc := panicExceptions(v)
	last := &exc[len(exc)-1]
	last.ThreadID = uint64(current.ID) // #nosec G115 -- a goroutine id, never negative
	last.Mechanism = &mechanism{Type: "panic", Handled: &handled}
	last.Stacktrace = &stacktrace{Frames: sentryFrames(current.Frames, nil, r.opts.InAppPrefixes)}
	ev.Exception = &exceptionList{Values: exc}
	ev.Threads = r.threads(current, others)
	if r.opts.TraceContext != nil && ctx != nil {
		if tid, sid := r.opts.TraceContext(ctx); tid != "" {
			ev.Contexts["trace"] = traceContext{TraceID: tid, SpanID: sid}
		}
	}
	if req != nil {
		ev.Request = r.request(req)
		if req.Pattern != "" {
			ev.Transaction = req.Pattern
			ev.Tags["route"] = req.Pattern
		}
	}
	return ev
}

// allStacks returns runtime.Stack of every goroutine, the caller's first.
func allStacks() []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// trimRecoverFrames drops the frames of the recovery (the deferred
// function, this package) above the panic, or, outside a panic, the
// frames of this package and runtime.Stack.
func trimRecoverFrames(frames []Frame) []Frame {
	t := trimPanicFrames(frames)
	if len(t) != len(frames) {
		return t
	}
	for len(t) > 0 {
		fn := t[0].Function
		if fn == "runtime.Stack" || fn == "runtime/debug.Stack" || strings.HasPrefix(fn, sdkModule+"/dump.") {
			t = t[1:]
			continue
		}
		break
	}
	return t
}

// panicExceptions describes a panic value: for an error, its chain of
// wrapped errors, innermost first as Sentry orders them (the raised one
// last).
func panicExceptions(v any) []exception {
	var chain []exception
	err, isErr := v.(error)
	for isErr && err != nil && len(chain) < 10 {
		chain = append(chain, exception{Type: fmt.Sprintf("%T", err), Value: safeString(err)})
		err = errors.Unwrap(err)
	}
	if len(chain) == 0 {
		return []exception{{Type: fmt.Sprintf("%T", v), Value: safeString(v)}}
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

// safeString formats a panic value; a value whose Error or String method
// panics itself is described rather than crashing the report.
func safeString(v any) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = fmt.Sprintf("(%T: formatting the value panicked: %v)", v, p)
		}
	}()
	switch x := v.(type) {
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// threads lists the crashed goroutine and up to MaxGoroutines-1 others.
func (r *Reporter) threads(crashed Goroutine, others []Goroutine) *threadList {
	n := min(len(others), r.opts.MaxGoroutines-1)
	ts := make([]thread, 0, n+1)
	t := goroutineThread(crashed, r.opts.InAppPrefixes)
	t.Crashed, t.Current = true, true
	ts = append(ts, t)
	for _, g := range others[:n] {
		ts = append(ts, goroutineThread(g, r.opts.InAppPrefixes))
	}
	return &threadList{Values: ts}
}

// request describes an HTTP request, secrets redacted.
func (r *Reporter) request(req *http.Request) *request {
	out := &request{Method: req.Method, Headers: make(map[string]string, len(req.Header)+1)}
	if req.URL != nil {
		u := *req.URL
		out.QueryString = redactQuery(u.RawQuery)
		u.RawQuery, u.Fragment, u.User = "", "", nil
		if u.Host == "" {
			u.Host = req.Host
		}
		if u.Scheme == "" {
			u.Scheme = "http"
			if req.TLS != nil {
				u.Scheme = "https"
			}
		}
		out.URL = u.String()
	}
	for k, vs := range req.Header {
		if r.static.redact[http.CanonicalHeaderKey(k)] {
			out.Headers[k] = "[Filtered]"
			continue
		}
		out.Headers[k] = strings.Join(vs, ", ")
	}
	if req.Host != "" {
		out.Headers["Host"] = req.Host
	}
	if req.RemoteAddr != "" {
		out.Env = map[string]string{"REMOTE_ADDR": req.RemoteAddr}
	}
	return out
}

// redactQuery filters the values of query parameters that usually carry
// secrets.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "token", "access_token", "api_key", "apikey", "key", "password", "secret", "sentry_key", "auth":
			parts[i] = k + "=[Filtered]"
		}
	}
	return strings.Join(parts, "&")
}

// crashEvent describes a crash found in a crash file.
func (r *Reporter) crashEvent(c Crash, perr error, text []byte, meta crashMeta, ts time.Time) *event {
	ver, rel, env := r.opts.Version, r.opts.Release, r.opts.Env
	if meta.PID != 0 {
		ver, rel, env = meta.Version, meta.Release, meta.Env
	}
	ev := r.newEvent("fatal", ts, ver, rel, env)
	handled := false
	var current Goroutine
	others := c.Goroutines
	if len(others) > 0 {
		current, others = others[0], others[1:]
	}
	frames := current.Frames
	if c.Kind == "panic" {
		// A re-panic shows the deferred function that panicked again
		// above the original panic.
		frames = trimPanicFrames(frames)
	}
	if len(frames) == 0 && len(c.RuntimeStack) > 0 {
		frames = c.RuntimeStack
	}
	var exc []exception
	for _, p := range c.Panics {
		exc = append(exc, exception{Type: crashType("panic", p.Value), Value: p.Value})
	}
	ev.Extra = map[string]any{}
	if c.Kind != "panic" || len(exc) == 0 {
		kind, msg := c.Kind, c.Message
		switch {
		case perr != nil:
			msg = firstLine(text)
		case kind == "":
			// A fatal error: the runtime left its message out of the
			// crash output (see infer.go).
			kind = "fatal error"
			if m, ok := inferFatal(c); ok {
				msg = m
			} else {
				msg = "unknown"
			}
			ev.Extra["message_inferred"] = "the runtime does not write fatal error messages to its crash output (golang/go#76859); this one was inferred from the stack"
		}
		c.Kind = kind
		exc = append(exc, exception{Type: crashType(kind, msg), Value: msg})
	}
	mech := &mechanism{Type: "panic", Handled: &handled}
	switch c.Kind {
	case "fatal error":
		mech.Type = "fatal"
	case "signal":
		mech.Type = "signal"
	}
	if c.Signal != "" {
		mech.Data = map[string]any{"signal": c.Signal}
	}
	last := &exc[len(exc)-1]
	last.Mechanism = mech
	last.ThreadID = uint64(current.ID) // #nosec G115 -- a goroutine id, never negative
	last.Stacktrace = &stacktrace{Frames: sentryFrames(frames, nil, r.opts.InAppPrefixes)}
	ev.Exception = &exceptionList{Values: exc}
	if len(c.Goroutines) > 0 {
		current.Frames = frames
		ev.Threads = r.threads(current, others)
	}
	if len(c.Runtime) > 0 {
		ev.Extra["runtime_messages"] = c.Runtime
	}
	if meta.PID != 0 {
		ev.Extra["crashed_pid"] = meta.PID
		ev.Extra["crashed_process_started"] = meta.Started
	}
	if perr != nil {
		ev.Extra["crash_output"] = truncate(string(text), 64<<10)
	}
	return ev
}

// crashType is the exception type a crash text gives: the runtime prints
// values, not their Go types.
func crashType(kind, msg string) string {
	switch {
	case kind == "panic" && strings.HasPrefix(msg, "runtime error: "):
		return "runtime.Error"
	case kind == "":
		return "crash"
	}
	return kind
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return truncate(s, 1024)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// spoolEvent encodes an event, within MaxEventBytes, and spools it.
func (r *Reporter) spoolEvent(ev *event, kind string) error {
	payload, err := r.marshalBounded(ev)
	if err == nil {
		var env []byte
		env, err = encodeEnvelope(r.dsn, ev.EventID, payload)
		if err == nil {
			var dropped int
			dropped, err = r.spool.add(ev.EventID, env)
			r.metrics.dropped.WithLabelValues(dropSpoolFull).Add(float64(dropped))
		}
	}
	if err != nil {
		reason := dropSpoolError
		if errors.Is(err, errTooLarge) {
			reason = dropTooLarge
		}
		r.metrics.dropped.WithLabelValues(reason).Inc()
		r.opts.Logger.Error("cannot spool dump report", "event_id", ev.EventID, "err", err)
		return err
	}
	r.metrics.captured.WithLabelValues(kind).Inc()
	return nil
}

// marshalBounded encodes ev, leaving out goroutines (never the crashed
// one) until it fits in MaxEventBytes.
func (r *Reporter) marshalBounded(ev *event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("cannot encode event: %w", err)
	}
	if len(b) <= r.opts.MaxEventBytes || ev.Threads == nil {
		return b, nil
	}
	all := ev.Threads.Values
	total := len(all)
	keep := len(all)
	for len(b) > r.opts.MaxEventBytes && keep > 1 {
		keep = max(1, keep/2)
		ev.Threads.Values = all[:keep]
		if ev.Extra == nil {
			ev.Extra = map[string]any{}
		}
		ev.Extra["goroutines_omitted"] = total - keep
		if b, err = json.Marshal(ev); err != nil {
			return nil, fmt.Errorf("cannot encode event: %w", err)
		}
	}
	return b, nil
}
