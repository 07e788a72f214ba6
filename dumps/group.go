// Package dumps turns crash and error events (model.Dump, consumed from the
// vigil.dumps queue) into issues: it groups each event (Group), writes the
// events and their issues through a storage.DumpWriter (Ingester), tells a
// webhook about new issues and regressions (Webhook), and serves them to
// people and to Grafana's Sentry data source (package dumps/api).
package dumps

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/zeebo/xxh3"

	"github.com/vigilhq/vigil/internal/model"
)

// Grouping is what Group makes of an event.
type Grouping struct {
	// IssueID is the issue's id: decimal digits of a hash of the service
	// and the key, the same in every ingester.
	IssueID string
	// Key is the grouping key (for people: docs/dumps.md "Grouping").
	Key string
	// Title and Culprit describe the issue (model.Issue).
	Title, Culprit string
}

// Bounds of what an issue's title and the grouping key keep of an event.
const (
	maxTitleBytes  = 256
	maxKeyFrames   = 64
	defaultFPEntry = "{{ default }}"
)

// Group returns the grouping of d: its explicit fingerprint, with each
// "{{ default }}" entry replaced by the default grouping; else the default
// grouping: the in-app frames of the raised exception (module and
// function, closure numbers removed); else the exception's type and value
// (numbers, hex addresses and UUIDs masked); else the message.
func Group(d *model.Dump) Grouping {
	var key string
	if len(d.Fingerprint) > 0 {
		parts := make([]string, 0, len(d.Fingerprint))
		for _, fp := range d.Fingerprint {
			if isDefaultEntry(fp) {
				parts = append(parts, defaultKey(d))
				continue
			}
			parts = append(parts, "fp:"+fp)
		}
		key = strings.Join(parts, "\n")
	} else {
		key = defaultKey(d)
	}
	h := xxh3.New()
	_, _ = h.WriteString(d.Service) // a hash's Write never fails
	_, _ = h.WriteString("\x00")
	_, _ = h.WriteString(key)
	// 53 bits: a JavaScript number holds the id exactly, as Sentry's ids.
	id := h.Sum64() & (1<<53 - 1)
	return Grouping{
		IssueID: strconv.FormatUint(id, 10),
		Key:     key,
		Title:   Title(d),
		Culprit: Culprit(d),
	}
}

func isDefaultEntry(s string) bool {
	return strings.ReplaceAll(s, " ", "") == "{{default}}"
}

// defaultKey is the grouping of an event without a fingerprint.
func defaultKey(d *model.Dump) string {
	ex := raised(d)
	if ex != nil {
		var b strings.Builder
		n := 0
		for _, f := range ex.Frames {
			if !f.InApp || n == maxKeyFrames {
				continue
			}
			n++
			b.WriteString("\n")
			b.WriteString(f.Module)
			b.WriteString("|")
			b.WriteString(NormalizeFunction(f.Function))
		}
		if n > 0 {
			return "frames:" + ex.Type + b.String()
		}
		if ex.Type != "" || ex.Value != "" {
			return "exception:" + ex.Type + "\n" + NormalizeValue(ex.Value)
		}
	}
	return "message:" + NormalizeValue(d.Message)
}

// raised returns the exception that was raised: the last one.
func raised(d *model.Dump) *model.Exception {
	if len(d.Exceptions) == 0 {
		return nil
	}
	return &d.Exceptions[len(d.Exceptions)-1]
}

// NormalizeFunction removes what changes between builds of the same code
// from a function name: closure numbers (main.handler.func1 and
// main.handler.func2 become main.handler.func, .gowrapN and .deferwrapN
// alike), and the arguments and pc offset a crash text prints.
func NormalizeFunction(fn string) string {
	fn = strings.TrimSpace(fn)
	if i := strings.LastIndex(fn, " +0x"); i >= 0 {
		fn = strings.TrimSpace(fn[:i])
	}
	if strings.HasSuffix(fn, ")") {
		// Go names end in ")" only with arguments: "main.f(0x1, ...)".
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
	}
	if !strings.Contains(fn, "func") && !strings.Contains(fn, "wrap") {
		return fn
	}
	var b strings.Builder
	b.Grow(len(fn))
	inClosure := false
	for i, seg := range strings.Split(fn, ".") {
		if inClosure && allDigits(seg) {
			continue // main.f.func1.2: the second closure inside func1
		}
		inClosure = false
		for _, p := range [...]string{"func", "gowrap", "deferwrap"} {
			if rest, ok := strings.CutPrefix(seg, p); ok && allDigits(rest) {
				seg, inClosure = p, true
				break
			}
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var (
	uuidPattern = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	hexPattern  = regexp.MustCompile(`(?i)\b0x[0-9a-f]+\b`)
	longHex     = regexp.MustCompile(`(?i)\b[0-9a-f]{12,}\b`)
	numPattern  = regexp.MustCompile(`\d+(\.\d+)?`)
)

// NormalizeValue masks what differs between two occurrences of the same
// error in its message: UUIDs, hex addresses and ids (12 digits or more),
// and numbers. "index out of range [5] with length 3" and "index out of
// range [7] with length 2" become the same value.
func NormalizeValue(v string) string {
	v = uuidPattern.ReplaceAllString(v, "<uuid>")
	v = hexPattern.ReplaceAllString(v, "<hex>")
	v = longHex.ReplaceAllString(v, "<hex>")
	return numPattern.ReplaceAllString(v, "<num>")
}

// Title is "Type: value" of the raised exception, else the first line of
// the message, cut to 256 bytes.
func Title(d *model.Dump) string {
	var t string
	if ex := raised(d); ex != nil && (ex.Type != "" || ex.Value != "") {
		switch {
		case ex.Type == "":
			t = ex.Value
		case ex.Value == "":
			t = ex.Type
		default:
			t = ex.Type + ": " + ex.Value
		}
	} else {
		t = d.Message
	}
	t, _, _ = strings.Cut(strings.TrimSpace(t), "\n")
	if t == "" {
		return "<unlabeled event>"
	}
	return truncate(t, maxTitleBytes)
}

// Culprit is the function of the newest in-app frame of the raised
// exception, with its module ("main.handler", "app.views.index"); else of
// its newest frame; else the event's transaction.
func Culprit(d *model.Dump) string {
	ex := raised(d)
	if ex == nil || len(ex.Frames) == 0 {
		return d.Transaction
	}
	f := ex.Frames[len(ex.Frames)-1]
	for i := len(ex.Frames) - 1; i >= 0; i-- {
		if ex.Frames[i].InApp {
			f = ex.Frames[i]
			break
		}
	}
	switch {
	case f.Module == "" || strings.HasPrefix(f.Function, f.Module+"."):
		return f.Function
	case f.Function == "":
		return f.Module
	}
	return f.Module + "." + f.Function
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
