package logql

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// Labels and values the parsers add to a line they cannot parse, as Loki
// does; `| __error__=""` drops such lines.
// __error_details__ holds the parser's explanation.
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"
	ErrJSONParser     = "JSONParserErr"
	ErrLogfmtParse    = "LogfmtParserErr"
	ErrTemplateFormat = "TemplateFormatErr"
	ErrLabelFilter    = "LabelFilterErr"
)

// extractedSuffix renames an extracted label that collides with a stream
// label.
const extractedSuffix = "_extracted"

// Pipeline runs the stages of a log query over lines. It is compiled once
// by LogSelectorExpr.Pipeline and is safe for concurrent use.
type Pipeline struct {
	stages []stage
	// filters is set when every stage is a line filter: Process then only
	// tests the line and never allocates.
	filters   []*lineFilter
	lineOnly  bool
	jsonCount int
	tmplCount int
	pool      sync.Pool // of *state
}

// stage is a compiled pipeline stage.
type stage interface {
	// process reports whether the line is kept.
	process(line string, st *state) bool
}

// Pipeline compiles the stages of e. The stream matchers are not part of
// the pipeline: the store selects streams, the pipeline filters lines.
func (e *LogSelectorExpr) Pipeline() (*Pipeline, error) {
	p := &Pipeline{lineOnly: true}
	for _, s := range e.Stages {
		switch s := s.(type) {
		case *LineFilterStage:
			f, err := newLineFilter(s)
			if err != nil {
				return nil, fmt.Errorf("cannot compile line filter %s: %w", s, err)
			}
			p.stages = append(p.stages, f)
			p.filters = append(p.filters, f)
		case *ParserStage:
			p.lineOnly = false
			st, err := p.newParserStage(s)
			if err != nil {
				return nil, fmt.Errorf("cannot compile parser %s: %w", s, err)
			}
			p.stages = append(p.stages, st)
		case *LabelFilterStage:
			p.lineOnly = false
			if s.Filter == nil {
				return nil, fmt.Errorf("cannot compile label filter: no filter")
			}
			f, err := compileLabelFilter(s.Filter)
			if err != nil {
				return nil, fmt.Errorf("cannot compile label filter %s: %w", s.Filter, err)
			}
			p.stages = append(p.stages, &labelFilterStage{f: f})
		default:
			p.lineOnly = false
			st, err := p.newFormatStage(s)
			if err != nil {
				return nil, fmt.Errorf("cannot compile %s: %w", s, err)
			}
			p.stages = append(p.stages, st)
		}
	}
	n, nt := p.jsonCount, p.tmplCount
	p.pool.New = func() any {
		return &state{json: make([]fastjson.Parser, n), tmpl: make([]*template.Template, nt)}
	}
	return p, nil
}

// Process runs the pipeline on one line of a stream whose labels, sorted by
// name, are stream. It reports whether the line is kept and, if so, returns
// the stream labels plus the labels extracted by parsers, sorted by name;
// an extracted label wins over a stream label of the same name (only
// possible for __error__, since parsers rename colliding labels with the
// suffix _extracted). When nothing was extracted the result is stream
// itself; otherwise it is a new slice the caller owns.
func (p *Pipeline) Process(line string, stream model.Labels) (model.Labels, bool) {
	_, ls, ok := p.ProcessEntry(0, line, stream)
	return ls, ok
}

// ProcessEntry is Process for a line with its timestamp (Unix ns, which
// templates read with __timestamp__). It also returns the line as the
// stages left it: rewritten by line_format, decolorize or unpack, else
// line itself. A rewritten line is a new string the caller owns.
func (p *Pipeline) ProcessEntry(ts int64, line string, stream model.Labels) (string, model.Labels, bool) {
	if p.lineOnly {
		for _, f := range p.filters {
			if !f.match(line) {
				return line, nil, false
			}
		}
		return line, stream, true
	}
	st := p.pool.Get().(*state)
	st.stream, st.line, st.ts = stream, line, ts
	kept := true
	for _, s := range p.stages {
		if !s.process(st.line, st) {
			kept = false
			break
		}
	}
	var out model.Labels
	if kept {
		out = st.result()
	}
	line = st.line
	st.reset()
	p.pool.Put(st)
	return line, out, kept
}

// state is the scratch space of one Process call. Extracted names and
// values may point into arena, into the buffers of the JSON parsers or into
// the line; result copies them out before the state is reused.
type state struct {
	stream model.Labels
	line   string // the line as the stages so far left it
	ts     int64
	ext    []extLabel // extracted or deleted, in order; the last of a name wins
	arena  []byte
	keyBuf []byte
	json   []fastjson.Parser    // one per json stage, as values alias their buffers
	tmpl   []*template.Template // one per template stage, made on first use
	merge  []extLabel           // scratch of result
}

// extLabel is a label set by a stage, or, with del, removed by one.
type extLabel struct {
	model.Label
	del  bool
	base bool // a stream label, in result's scratch
}

func (st *state) reset() {
	st.stream = nil
	st.line = ""
	clear(st.ext)
	st.ext = st.ext[:0]
	st.arena = st.arena[:0]
	st.keyBuf = st.keyBuf[:0]
	clear(st.merge)
	st.merge = st.merge[:0]
}

// get returns the current value of a label, extracted or stream.
func (st *state) get(name string) (string, bool) {
	for i := len(st.ext) - 1; i >= 0; i-- {
		if st.ext[i].Name == name {
			return st.ext[i].Value, !st.ext[i].del
		}
	}
	for _, l := range st.stream {
		if l.Name == name {
			return l.Value, true
		}
	}
	return "", false
}

func (st *state) baseHas(name string) bool {
	for _, l := range st.stream {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (st *state) set(name, value string) {
	st.ext = append(st.ext, extLabel{Label: model.Label{Name: name, Value: value}})
}

// del removes a label, stream or extracted.
func (st *state) del(name string) {
	st.ext = append(st.ext, extLabel{Label: model.Label{Name: name}, del: true})
}

// setErrorDetails sets __error__ and __error_details__, as Loki's parsers
// do when they fail.
func (st *state) setErrorDetails(value, details string) {
	st.set(ErrorLabel, value)
	st.set(ErrorDetailsLabel, details)
}

// each calls fn with every current label, stream and extracted, each name
// once with its current value, in no particular order.
func (st *state) each(fn func(name, value string)) {
	for _, l := range st.stream {
		if v, ok := st.get(l.Name); ok {
			fn(l.Name, v)
		}
	}
	for i, l := range st.ext {
		if l.del || st.baseHas(l.Name) {
			continue
		}
		last := true
		for _, later := range st.ext[i+1:] {
			if later.Name == l.Name {
				last = false
				break
			}
		}
		if last {
			fn(l.Name, l.Value)
		}
	}
}

// str copies b into the arena and returns it as a string valid until reset.
// Strings returned earlier stay valid when the arena grows: they keep the
// old backing array, which is never written again.
func (st *state) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(st.arena)
	st.arena = append(st.arena, b...)
	return unsafe.String(&st.arena[start], len(b)) // #nosec G103 -- the arena's bytes are never written again until reset (see above)
}

// extractedName returns the label name for an extracted key that has been
// sanitized into b, renamed if it collides with a stream label.
func (st *state) extractedName(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if st.baseHas(unsafe.String(&b[0], len(b))) { // #nosec G103 -- a view for a lookup, which does not keep it
		start := len(st.arena)
		st.arena = append(append(st.arena, b...), extractedSuffix...)
		return unsafe.String(&st.arena[start], len(st.arena)-start) // #nosec G103 -- the arena's bytes are never written again until reset
	}
	return st.str(b)
}

// result merges the stream and extracted labels into a new sorted slice
// whose strings share one fresh allocation. Deleted labels are left out.
func (st *state) result() model.Labels {
	if len(st.ext) == 0 {
		return st.stream
	}
	// The stream labels are sorted already: sort the few extracted ones
	// and merge, stream labels first among equal names.
	slices.SortStableFunc(st.ext, func(a, b extLabel) int { return strings.Compare(a.Name, b.Name) })
	all := st.merge[:0]
	i, j := 0, 0
	for i < len(st.stream) || j < len(st.ext) {
		if j == len(st.ext) || i < len(st.stream) && st.stream[i].Name <= st.ext[j].Name {
			all = append(all, extLabel{Label: st.stream[i], base: true})
			i++
		} else {
			all = append(all, st.ext[j])
			j++
		}
	}
	st.merge = all
	// Keep the last label of each name: extracted after stream, later
	// extractions after earlier ones.
	w := 0
	n := 0
	for i := range all {
		if i+1 < len(all) && all[i+1].Name == all[i].Name || all[i].del {
			continue
		}
		all[w] = all[i]
		if !all[w].base {
			n += len(all[w].Name) + len(all[w].Value)
		}
		w++
	}
	all = all[:w]
	var b strings.Builder
	b.Grow(n)
	for _, l := range all {
		if !l.base {
			b.WriteString(l.Name)
			b.WriteString(l.Value)
		}
	}
	blob := b.String()
	out := make(model.Labels, 0, len(all))
	off := 0
	for _, l := range all {
		if l.base {
			out = append(out, l.Label)
			continue
		}
		name := blob[off : off+len(l.Name)]
		off += len(l.Name)
		value := blob[off : off+len(l.Value)]
		off += len(l.Value)
		out = append(out, model.Label{Name: name, Value: value})
	}
	return out
}
