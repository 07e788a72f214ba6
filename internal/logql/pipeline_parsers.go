package logql

import (
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/logfmt"
)

func (p *Pipeline) newParserStage(s *ParserStage) (stage, error) {
	switch s.Kind {
	case ParserJSON:
		js := &jsonStage{idx: p.jsonCount}
		p.jsonCount++
		for _, x := range s.Extractions {
			keys, err := parseJSONPath(x.Expr)
			if err != nil {
				return nil, err
			}
			js.paths = append(js.paths, jsonPath{label: x.Label, keys: keys})
		}
		return js, nil
	case ParserLogfmt:
		return &logfmtStage{extractions: s.Extractions, strict: s.Strict, keepEmpty: s.KeepEmpty}, nil
	case ParserRegexp:
		return newRegexpStage(s.Param)
	case ParserPattern:
		return newPatternStage(s.Param)
	case ParserUnpack:
		st := &unpackStage{idx: p.jsonCount}
		p.jsonCount++
		return st, nil
	}
	return nil, errUnknownParser(s.Kind)
}

type errUnknownParser ParserKind

func (e errUnknownParser) Error() string { return "unknown parser " + string(e) }

// appendSanitized appends key to dst as a label name, mapping every
// character outside [a-zA-Z0-9_] to '_' like Loki. A first segment that
// starts with a digit gets a leading '_'.
func appendSanitized(dst []byte, key string, first bool) []byte {
	if first {
		key = strings.TrimSpace(key)
		if key != "" && isDigit(key[0]) {
			dst = append(dst, '_')
		}
	}
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if !isIdentChar(c) {
				c = '_'
			}
			dst = append(dst, c)
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(key[i:])
		dst = append(dst, '_')
		i += size
	}
	return dst
}

// cleanValue drops values with invalid UTF-8 or U+FFFD, as Loki does.
func cleanValue(v string) string {
	if strings.ContainsRune(v, utf8.RuneError) {
		return ""
	}
	return v
}

func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b)) // #nosec G103 -- views of bytes the pipeline does not change while the line is processed
}

type jsonPath struct {
	label string
	keys  []string
}

// jsonStage is `| json`: every scalar field, nested objects flattened with
// '_', arrays and nulls skipped; or, with paths, only the listed values.
type jsonStage struct {
	idx   int
	paths []jsonPath
}

func (s *jsonStage) process(line string, st *state) bool {
	v, err := st.json[s.idx].Parse(line)
	switch {
	case err != nil:
		msg, _, _ := strings.Cut(err.Error(), "; unparsed tail")
		st.setErrorDetails(ErrJSONParser, msg)
		return true
	case v.Type() != fastjson.TypeObject:
		st.setErrorDetails(ErrJSONParser, "expecting a JSON object, found "+v.Type().String())
		return true
	}
	if len(s.paths) > 0 {
		for _, p := range s.paths {
			st.keyBuf = append(st.keyBuf[:0], p.label...)
			name := st.extractedName(st.keyBuf)
			st.set(name, st.jsonValue(v.Get(p.keys...), true))
		}
		return true
	}
	o, _ := v.Object()
	st.keyBuf = st.keyBuf[:0]
	st.flattenJSON(o)
	return true
}

func (st *state) flattenJSON(o *fastjson.Object) {
	o.Visit(func(k []byte, v *fastjson.Value) {
		n := len(st.keyBuf)
		if n > 0 {
			st.keyBuf = append(st.keyBuf, '_')
		}
		st.keyBuf = appendSanitized(st.keyBuf, bytesToString(k), n == 0)
		switch v.Type() {
		case fastjson.TypeObject:
			inner, _ := v.Object()
			st.flattenJSON(inner)
		case fastjson.TypeString, fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
			if len(st.keyBuf) > 0 {
				st.set(st.extractedName(st.keyBuf), st.jsonValue(v, false))
			}
		}
		st.keyBuf = st.keyBuf[:n]
	})
}

// jsonValue renders a scalar as its text; with raw, objects and arrays as
// their JSON. Missing values and null are "".
func (st *state) jsonValue(v *fastjson.Value, raw bool) string {
	if v == nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return cleanValue(bytesToString(b))
	case fastjson.TypeNumber:
		start := len(st.arena)
		st.arena = v.MarshalTo(st.arena)
		return bytesToString(st.arena[start:])
	case fastjson.TypeTrue:
		return "true"
	case fastjson.TypeFalse:
		return "false"
	case fastjson.TypeObject, fastjson.TypeArray:
		if raw {
			start := len(st.arena)
			st.arena = v.MarshalTo(st.arena)
			return bytesToString(st.arena[start:])
		}
	}
	return ""
}

// logfmtStage is `| logfmt`: every key, or only the listed ones. Without
// strict, malformed pairs are skipped; with it, parsing stops at the first
// one and the line gets __error__. Keys without a value are kept, empty,
// only with keepEmpty.
type logfmtStage struct {
	extractions       []LabelExtraction
	strict, keepEmpty bool
}

func (s *logfmtStage) process(line string, st *state) bool {
	var fn func(k, v string)
	if len(s.extractions) == 0 {
		fn = func(k, v string) {
			if v == "" && !s.keepEmpty {
				return
			}
			st.keyBuf = appendSanitized(st.keyBuf[:0], k, true)
			if name := st.extractedName(st.keyBuf); name != "" {
				st.set(name, cleanValue(v))
			}
		}
	} else {
		// Every requested label exists, empty when the key is absent.
		first := len(st.ext)
		for _, x := range s.extractions {
			st.keyBuf = append(st.keyBuf[:0], x.Label...)
			st.set(st.extractedName(st.keyBuf), "")
		}
		fn = func(k, v string) {
			for i, x := range s.extractions {
				if x.Expr == k {
					st.set(st.ext[first+i].Name, cleanValue(v))
				}
			}
		}
	}
	for {
		err := logfmt.Parse(line, fn)
		if err == nil {
			return true
		}
		var se *logfmt.SyntaxError
		if s.strict || !errors.As(err, &se) {
			st.setErrorDetails(ErrLogfmtParse, err.Error())
			return true
		}
		// Skip the malformed pair: resume after the next blank.
		rest := line[min(se.Offset+1, len(line)):]
		i := strings.IndexAny(rest, " \t\r\n")
		if i < 0 {
			return true
		}
		line = rest[i:]
	}
}
