package profiles

import (
	"container/list"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/storage"
)

// pprof's web UI for a selection: GET UIPrefix?query=…&start=…&end=…
// freezes the range and redirects to UIPrefix+"s/<token>/", where the token
// carries the selection, so that pprof's own relative links (./top,
// ./flamegraph?f=…) stay within it. Each selection's UI is pprof's driver
// run once on the merged profile with a custom HTTPServer that keeps its
// handlers; a few are cached, the least recently used evicted, and an
// evicted one is rebuilt from its token.
//
// pprof reads nothing from this machine on a profile's behalf: no
// symbolization, no object files (disassembly answers an error) and source
// files are looked for under /dev/null, where none can exist — so a
// profile naming /etc/passwd as its source shows nothing of it.

const uiTokenPath = "s/"

// uiEntry is the pprof UI of one selection.
type uiEntry struct {
	key      string
	once     sync.Once
	handlers map[string]http.Handler
	err      error
}

type uiCache struct {
	a   *API
	max int

	mu      sync.Mutex
	lru     *list.List // of *uiEntry, most recently used first
	entries map[string]*list.Element
}

func newUICache(a *API, max int) *uiCache {
	return &uiCache{a: a, max: max, lru: list.New(), entries: map[string]*list.Element{}}
}

// driverMu serialises runs of pprof's driver, which sets package state.
var driverMu sync.Mutex

func (c *uiCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.a.requests.WithLabelValues("ui").Inc()
	rest := strings.TrimPrefix(r.URL.Path, UIPrefix)
	if rest == r.URL.Path || !strings.HasPrefix(rest, uiTokenPath) {
		c.redirect(w, r)
		return
	}
	rest = strings.TrimPrefix(rest, uiTokenPath)
	token, view, _ := strings.Cut(rest, "/")
	q, err := decodeUIToken(token)
	if err != nil {
		c.fail(w, err)
		return
	}
	view = "/" + view
	switch view {
	case "/saveconfig", "/deleteconfig":
		// pprof would write its settings file on this machine.
		http.Error(w, "saving pprof settings is not available in Vigil", http.StatusForbidden)
		return
	}
	h, err := c.handler(r, token, q, view)
	if err != nil {
		c.fail(w, err)
		return
	}
	h.ServeHTTP(w, r)
}

func (c *uiCache) fail(w http.ResponseWriter, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		c.a.bad.WithLabelValues("ui").Inc()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.a.failed.WithLabelValues("ui").Inc()
	c.a.log.Error("pprof web UI failed", "err", err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// redirect freezes the request's selection into a token.
func (c *uiCache) redirect(w http.ResponseWriter, r *http.Request) {
	q, err := c.a.mergeQuery(r, "")
	if err != nil {
		c.fail(w, err)
		return
	}
	v := url.Values{"start": {strconv.FormatInt(q.Start, 10)}, "end": {strconv.FormatInt(q.End, 10)}}
	if s := r.FormValue("query"); s != "" {
		v.Set("query", s)
	}
	if len(q.SpanIDs) > 0 {
		v["span_id"] = q.SpanIDs
	}
	http.Redirect(w, r, UIPrefix+uiTokenPath+base64.RawURLEncoding.EncodeToString([]byte(v.Encode()))+"/", http.StatusSeeOther)
}

func decodeUIToken(token string) (url.Values, error) {
	if len(token) > 2*maxSelectorLen {
		return nil, badf("pprof UI selection is %d bytes, more than the limit of %d", len(token), 2*maxSelectorLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, badf("pprof UI selection %q is not valid: %v", token, err)
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, badf("pprof UI selection %q is not valid: %v", token, err)
	}
	return v, nil
}

// handler returns the UI handler of view for the selection, building the
// UI if it is not cached.
func (c *uiCache) handler(r *http.Request, key string, form url.Values, view string) (http.Handler, error) {
	sel, err := c.a.selectionOf(form, "")
	if err != nil {
		return nil, err
	}
	q := storage.MergeQuery{ProfileSelector: sel, SpanIDs: form["span_id"]}
	for _, id := range q.SpanIDs {
		if !validSpanID(id) {
			return nil, badf("span_id %q: want 16 hex digits", id)
		}
	}
	// A UI holds one tenant's profiles: the same selection asked by another
	// tenant is another UI.
	e := c.entry(auth.Tenant(r.Context()) + "\x00" + key)
	e.once.Do(func() {
		p, err := c.a.mergeOf(r.Context(), q)
		if err != nil {
			e.err = err
			return
		}
		e.handlers, e.err = buildUI(p, sel)
	})
	if e.err != nil {
		c.drop(e)
		return nil, e.err
	}
	h, ok := e.handlers[view]
	if !ok {
		return nil, badf("pprof UI has no page %q", strings.TrimPrefix(view, "/"))
	}
	return h, nil
}

func (c *uiCache) entry(key string) *uiEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*uiEntry)
	}
	e := &uiEntry{key: key}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*uiEntry).key)
	}
	return e
}

func (c *uiCache) drop(e *uiEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok && el.Value == e {
		c.lru.Remove(el)
		delete(c.entries, e.key)
	}
}

func (c *uiCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// buildUI runs pprof's driver on p and returns its web UI's handlers.
func buildUI(p *profile.Profile, sel storage.ProfileSelector) (map[string]http.Handler, error) {
	p = p.Copy()
	for _, fn := range p.Function {
		if fn.Filename != "" {
			fn.Filename = "/dev/null/" + strings.TrimPrefix(path.Clean("/"+fn.Filename), "/")
		}
	}
	p.Comments = append(p.Comments, "Vigil: "+selName(sel))
	if len(p.SampleType) == 0 {
		// An empty selection: pprof needs a sample type to show nothing.
		p.SampleType = []*profile.ValueType{{Type: "samples", Unit: "count"}}
	}
	var handlers map[string]http.Handler
	fs := newUIFlags([]string{"-http=localhost:1", "-no_browser", "-symbolize=none", "-trim_path=/vigil-no-trim/", "vigil"})
	driverMu.Lock()
	defer driverMu.Unlock()
	err := driver.PProf(&driver.Options{
		Flagset: fs,
		Fetch:   uiFetcher{p: p},
		Sym:     noSymbolizer{},
		Obj:     noObjTool{},
		UI:      quietUI{},
		HTTPServer: func(args *driver.HTTPServerArgs) error {
			handlers = args.Handlers
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pprof web UI: %w", err)
	}
	if handlers == nil {
		return nil, errors.New("pprof web UI: the driver served no handlers")
	}
	return handlers, nil
}

func selName(sel storage.ProfileSelector) string {
	var b strings.Builder
	b.WriteString(sel.Type)
	b.WriteByte('{')
	for i, m := range sel.Matchers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	fmt.Fprintf(&b, " %s – %s", time.Unix(0, sel.Start).UTC().Format(time.RFC3339), time.Unix(0, sel.End).UTC().Format(time.RFC3339))
	return b.String()
}

type uiFetcher struct{ p *profile.Profile }

// Fetch answers the merged profile with no source address: pprof would
// save a copy of a profile it considers remote in $HOME/pprof.
func (f uiFetcher) Fetch(string, time.Duration, time.Duration) (*profile.Profile, string, error) {
	return f.p, "", nil
}

type noSymbolizer struct{}

func (noSymbolizer) Symbolize(string, driver.MappingSources, *profile.Profile) error { return nil }

var errNoObj = errors.New("object files are not available in Vigil")

type noObjTool struct{}

func (noObjTool) Open(string, uint64, uint64, uint64, string) (driver.ObjFile, error) {
	return nil, errNoObj
}

func (noObjTool) Disasm(string, uint64, uint64, bool) ([]driver.Inst, error) { return nil, errNoObj }

type quietUI struct{}

func (quietUI) ReadLine(string) (string, error)     { return "", io.EOF }
func (quietUI) Print(...any)                        {}
func (quietUI) PrintErr(...any)                     {}
func (quietUI) IsTerminal() bool                    { return false }
func (quietUI) WantBrowser() bool                   { return false }
func (quietUI) SetAutoComplete(func(string) string) {}

// uiFlags is pprof's command line, given rather than read from os.Args.
type uiFlags struct {
	fs   *flag.FlagSet
	args []string
}

func newUIFlags(args []string) *uiFlags {
	fs := flag.NewFlagSet("pprof", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &uiFlags{fs: fs, args: args}
}

func (f *uiFlags) Bool(n string, d bool, u string) *bool          { return f.fs.Bool(n, d, u) }
func (f *uiFlags) Int(n string, d int, u string) *int             { return f.fs.Int(n, d, u) }
func (f *uiFlags) Float64(n string, d float64, u string) *float64 { return f.fs.Float64(n, d, u) }
func (f *uiFlags) String(n string, d string, u string) *string    { return f.fs.String(n, d, u) }
func (f *uiFlags) ExtraUsage() string                             { return "" }
func (f *uiFlags) AddExtraUsage(string)                           {}

func (f *uiFlags) StringList(n string, d string, u string) *[]*string {
	return &[]*string{f.fs.String(n, d, u)}
}

func (f *uiFlags) Parse(usage func()) []string {
	if err := f.fs.Parse(f.args); err != nil {
		usage()
		return nil
	}
	return f.fs.Args()
}
