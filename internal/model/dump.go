package model

import (
	"encoding/json"
	"sort"
	"strings"
)

// Dump is one crash or error event inside Vigil: a panic, a fatal runtime
// error, or an error event an SDK reported. It is what the dumps intake
// makes of a Sentry event (envelope or store payload), what the queue
// carries (as JSON, see docs/format/dumps.md) and what a dump store keeps.
// The JSON field names below are the queue format: a field may be added,
// none renamed.
type Dump struct {
	// EventID is Sentry's event_id: 32 lower-case hex digits, unique per
	// event. A store keeps an event id once, so a retried delivery does not
	// count twice.
	EventID string `json:"event_id"`
	// Project is the Sentry project id of the intake URL
	// (/api/{project_id}/envelope/).
	Project string `json:"project"`
	// Service is the service that sent it: the event's "service" tag, else
	// the server name, else the project. A Sentry project is a Vigil
	// service.
	Service string `json:"service"`
	// Grade is the service's grade, 1 (most critical) to 4; 0 when unknown.
	Grade int `json:"grade,omitempty"`
	// Timestamp is when it happened, Received when the intake accepted it;
	// both Unix ns.
	Timestamp int64 `json:"timestamp"`
	Received  int64 `json:"received"`
	// Level is Sentry's: fatal, error, warning, info or debug.
	Level       string `json:"level"`
	Platform    string `json:"platform,omitempty"` // go, python, …
	Message     string `json:"message,omitempty"`  // the formatted log entry or message
	Logger      string `json:"logger,omitempty"`
	Release     string `json:"release,omitempty"`
	Dist        string `json:"dist,omitempty"`
	Environment string `json:"environment,omitempty"`
	ServerName  string `json:"server_name,omitempty"` // the host
	Transaction string `json:"transaction,omitempty"` // e.g. the route
	// TraceID and SpanID are the trace context (contexts.trace), hex.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	// Fingerprint is the event's explicit grouping, as sent; empty means
	// the default grouping (docs/dumps.md). "{{ default }}" entries are
	// kept as they are.
	Fingerprint []string `json:"fingerprint,omitempty"`
	// Exceptions are the event's exceptions as Sentry orders them: the
	// last one is the one that was raised (the outermost of a chain).
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Threads are every goroutine (thread) at the time, the crashed one
	// marked.
	Threads []Thread `json:"threads,omitempty"`
	// Request is the HTTP request being served, secrets redacted.
	Request *DumpRequest `json:"request,omitempty"`
	// Tags are the event's tags, sorted by key, each key once.
	Tags []Attr `json:"tags,omitempty"`
	// SDK is the reporting SDK as "name/version".
	SDK string `json:"sdk,omitempty"`
	// Modules are the loaded modules and their versions (Go: the build
	// info's dependencies), sorted by key.
	Modules []Attr `json:"modules,omitempty"`
	// Contexts and Extra are the event's "contexts" and "extra" objects,
	// kept as sent (bounded by the intake's size limits).
	Contexts json.RawMessage `json:"contexts,omitempty"`
	Extra    json.RawMessage `json:"extra,omitempty"`
	// IssueID is the issue the event is grouped into. The intake leaves it
	// empty; the ingester sets it before writing.
	IssueID string `json:"issue_id,omitempty"`
}

// Exception is one exception (Go: one panic value, or a wrapped error in a
// chain).
type Exception struct {
	Type   string `json:"type,omitempty"`  // e.g. "*errors.errorString", "runtime.Error", "ValueError"
	Value  string `json:"value,omitempty"` // the message
	Module string `json:"module,omitempty"`
	// Mechanism is how it was caught: "panic", "fatal", "generic",
	// "excepthook", …; Handled is false when it was not handled by the
	// program (a crash).
	Mechanism string `json:"mechanism,omitempty"`
	Handled   *bool  `json:"handled,omitempty"`
	ThreadID  string `json:"thread_id,omitempty"`
	// Frames are oldest first (the caller of the caller first, the frame
	// that raised last), as Sentry orders stack frames.
	Frames []Frame `json:"frames,omitempty"`
}

// Frame is one stack frame.
type Frame struct {
	Function string `json:"function,omitempty"`
	Module   string `json:"module,omitempty"` // Go: the package path
	Filename string `json:"filename,omitempty"`
	AbsPath  string `json:"abs_path,omitempty"`
	Line     int    `json:"lineno,omitempty"`
	Column   int    `json:"colno,omitempty"`
	// InApp marks the application's own code, as opposed to the standard
	// library and dependencies; grouping uses only in-app frames.
	InApp bool `json:"in_app,omitempty"`
}

// Thread is one goroutine (or thread) of a dump.
type Thread struct {
	ID      string  `json:"id"`
	Name    string  `json:"name,omitempty"`
	State   string  `json:"state,omitempty"` // Go: "running", "chan receive", …
	Crashed bool    `json:"crashed,omitempty"`
	Current bool    `json:"current,omitempty"`
	Frames  []Frame `json:"frames,omitempty"` // oldest first
}

// DumpRequest is the HTTP request of a dump.
type DumpRequest struct {
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`
	Query  string `json:"query_string,omitempty"`
	// Headers are sorted by key; secrets (Authorization, Cookie, …) are
	// redacted by the sender or, failing that, by the intake.
	Headers []Attr `json:"headers,omitempty"`
}

// IssueStatus is the state of an issue: new events reopen a resolved issue
// (a regression); ignored issues stay ignored.
type IssueStatus string

// Issue statuses, named as Sentry names them.
const (
	IssueUnresolved IssueStatus = "unresolved"
	IssueResolved   IssueStatus = "resolved"
	IssueIgnored    IssueStatus = "ignored"
)

// Issue is a group of dumps with the same grouping key.
type Issue struct {
	// ID is the issue's id: decimal digits, as Sentry's, derived from the
	// grouping key so every ingester computes the same id.
	ID      string `json:"id"`
	Project string `json:"project"`
	Service string `json:"service"`
	Grade   int    `json:"grade,omitempty"`
	// Title is "Type: value" of the raised exception, else the message;
	// Culprit the function of its newest in-app frame.
	Title   string      `json:"title"`
	Culprit string      `json:"culprit,omitempty"`
	Level   string      `json:"level"`
	Status  IssueStatus `json:"status"`
	// FirstSeen and LastSeen are event timestamps, Unix ns; Count is the
	// number of distinct events.
	FirstSeen int64 `json:"first_seen"`
	LastSeen  int64 `json:"last_seen"`
	Count     int64 `json:"count"`
	// Releases, Environments and Hosts seen, sorted, bounded in number.
	Releases     []string `json:"releases,omitempty"`
	Environments []string `json:"environments,omitempty"`
	Hosts        []string `json:"hosts,omitempty"`
	// ResolvedAt is when it was last resolved; RegressedAt when an event
	// last arrived after that (the issue is then unresolved again). Unix ns,
	// 0 when never.
	ResolvedAt  int64  `json:"resolved_at,omitempty"`
	RegressedAt int64  `json:"regressed_at,omitempty"`
	LastEventID string `json:"last_event_id,omitempty"`
	// FirstEventID is the event that opened the issue, RegressionEventID
	// the one that last reopened it: a store reports the change again when
	// a retried write carries that event (notifications are at least once).
	FirstEventID      string `json:"first_event_id,omitempty"`
	RegressionEventID string `json:"regression_event_id,omitempty"`
}

// SearchTags returns the tags of d as Sentry lists and searches them: its
// own tags and level, environment, release and server_name, sorted by
// key, each key once (an own tag wins).
func (d *Dump) SearchTags() []Attr {
	tags := append([]Attr(nil), d.Tags...)
	has := func(k string) bool {
		for _, t := range d.Tags {
			if t.Key == k {
				return true
			}
		}
		return false
	}
	for _, t := range []Attr{{Key: "level", Value: d.Level}, {Key: "environment", Value: d.Environment},
		{Key: "release", Value: d.Release}, {Key: "server_name", Value: d.ServerName}} {
		if t.Value != "" && !has(t.Key) {
			tags = append(tags, t)
		}
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return tags
}

// SearchText returns what a free-text search of dumps looks in, lower
// case: the message, the exceptions' types and values, the transaction and
// the search tags' values, one per line, stopping after max bytes.
func (d *Dump) SearchText(max int) string {
	var b strings.Builder
	add := func(s string) {
		if s != "" && b.Len() < max {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	add(d.Message)
	for _, e := range d.Exceptions {
		add(e.Type)
		add(e.Value)
	}
	add(d.Transaction)
	for _, t := range d.SearchTags() {
		add(t.Value)
	}
	return strings.ToLower(b.String())
}
