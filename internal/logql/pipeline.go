package logql

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// Labels and values the parsers add to a line they cannot parse, as Loki
// does; `| __error__=""` drops such lines.
const (
	ErrorLabel     = "__error__"
	ErrJSONParser  = "JSONParserErr"
	ErrLogfmtParse = "LogfmtParserErr"
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
			p.stages = append(p.stages, &labelFilterStage{f: s.Filter})
		default:
			return nil, fmt.Errorf("cannot compile pipeline stage %T", s)
		}
	}
	n := p.jsonCount
	p.pool.New = func() any { return &state{json: make([]fastjson.Parser, n)} }
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
	if p.lineOnly {
		for _, f := range p.filters {
			if !f.match(line) {
				return nil, false
			}
		}
		return stream, true
	}
	st := p.pool.Get().(*state)
	st.stream = stream
	kept := true
	for _, s := range p.stages {
		if !s.process(line, st) {
			kept = false
			break
		}
	}
	var out model.Labels
	if kept {
		out = st.result()
	}
	st.reset()
	p.pool.Put(st)
	return out, kept
}

// state is the scratch space of one Process call. Extracted names and
// values may point into arena, into the buffers of the JSON parsers or into
// the line; result copies them out before the state is reused.
type state struct {
	stream model.Labels
	ext    []model.Label // extracted, in order; the last of a name wins
	arena  []byte
	keyBuf []byte
	json   []fastjson.Parser // one per json stage, as values alias their buffers
}

func (st *state) reset() {
	st.stream = nil
	clear(st.ext)
	st.ext = st.ext[:0]
	st.arena = st.arena[:0]
	st.keyBuf = st.keyBuf[:0]
}

// get returns the current value of a label, extracted or stream.
func (st *state) get(name string) (string, bool) {
	for i := len(st.ext) - 1; i >= 0; i-- {
		if st.ext[i].Name == name {
			return st.ext[i].Value, true
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
	st.ext = append(st.ext, model.Label{Name: name, Value: value})
}

func (st *state) setError(value string) { st.set(ErrorLabel, value) }

// str copies b into the arena and returns it as a string valid until reset.
// Strings returned earlier stay valid when the arena grows: they keep the
// old backing array, which is never written again.
func (st *state) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(st.arena)
	st.arena = append(st.arena, b...)
	return unsafe.String(&st.arena[start], len(b))
}

// extractedName returns the label name for an extracted key that has been
// sanitized into b, renamed if it collides with a stream label.
func (st *state) extractedName(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if st.baseHas(unsafe.String(&b[0], len(b))) {
		start := len(st.arena)
		st.arena = append(append(st.arena, b...), extractedSuffix...)
		return unsafe.String(&st.arena[start], len(st.arena)-start)
	}
	return st.str(b)
}

// result merges the stream and extracted labels into a new sorted slice
// whose strings share one fresh allocation.
func (st *state) result() model.Labels {
	if len(st.ext) == 0 {
		return st.stream
	}
	n := 0
	for _, l := range st.ext {
		n += len(l.Name) + len(l.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, l := range st.ext {
		b.WriteString(l.Name)
		b.WriteString(l.Value)
	}
	blob := b.String()
	out := make(model.Labels, 0, len(st.stream)+len(st.ext))
	out = append(out, st.stream...)
	off := 0
	for _, l := range st.ext {
		name := blob[off : off+len(l.Name)]
		off += len(l.Name)
		value := blob[off : off+len(l.Value)]
		off += len(l.Value)
		out = append(out, model.Label{Name: name, Value: value})
	}
	slices.SortStableFunc(out, func(a, b model.Label) int { return strings.Compare(a.Name, b.Name) })
	// Keep the last label of each name: extracted after stream, later
	// extractions after earlier ones.
	w := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].Name == out[i].Name {
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}
