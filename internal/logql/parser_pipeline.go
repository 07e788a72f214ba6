package logql

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/internal/model"
)

// unsupportedStages are Loki stages Vigil does not evaluate; naming them in
// the error beats a confusing syntax error.
var unsupportedStages = map[string]bool{"unwrap": true, "distinct": true}

// isComparison reports whether k can follow a label name in a label filter.
func isComparison(k tokenKind) bool {
	switch k {
	case tokEq, tokNeq, tokRe, tokNre, tokGT, tokGTE, tokLT, tokLTE, tokCmpEq:
		return true
	}
	return false
}

// parsePipeStage parses what follows "|": a parser, a formatting or label
// stage, or a label filter.
func (p *parser) parsePipeStage() (Stage, error) {
	t := p.peek()
	switch t.kind {
	case tokIdent:
		if isComparison(p.peekN(1).kind) {
			break // a label filter on a label named like a stage
		}
		switch t.text {
		case string(ParserJSON), string(ParserLogfmt):
			return p.parseParserStage()
		case string(ParserRegexp), string(ParserPattern):
			return p.parseExprParserStage()
		case string(ParserUnpack):
			p.next()
			return &ParserStage{Kind: ParserUnpack}, nil
		case "decolorize":
			p.next()
			return &DecolorizeStage{}, nil
		case "drop", "keep":
			return p.parseDropKeep()
		case "line_format":
			return p.parseLineFormat()
		case "label_format":
			return p.parseLabelFormat()
		}
		if unsupportedStages[t.text] {
			return nil, p.errorAt(t, "unsupported pipeline stage %q", t.text)
		}
	case tokLParen:
	default:
		return nil, p.unexpected(t, "IDENTIFIER or (")
	}
	f, err := p.parseLabelFilterOr()
	if err != nil {
		return nil, err
	}
	return &LabelFilterStage{Filter: f}, nil
}

// parseLineFilter parses the string (and its `or` alternatives) after a
// line filter operator. `!= "a" or "b"` means neither a nor b, so it
// becomes two filters, as in Loki.
func (p *parser) parseLineFilter(op LineFilterOp) ([]Stage, error) {
	if t := p.peek(); t.kind == tokIdent && t.text == "ip" && p.peekN(1).kind == tokLParen {
		if op != LineContains && op != LineNotContains {
			return nil, p.errorAt(t, "ip: invalid operation")
		}
		p.next()
		f, err := p.parseIPFilter("", false)
		if err != nil {
			return nil, err
		}
		return []Stage{&LineFilterStage{Op: op, Text: f.(*IPFilter).Pattern, IP: true}}, nil
	}
	var texts []string
	for {
		st, err := p.expect(tokString)
		if err != nil {
			return nil, err
		}
		switch op {
		case LineMatch, LineNotMatch:
			if _, err := regexp.Compile(st.val); err != nil {
				return nil, p.errorAt(st, "invalid regular expression %q: %s", st.val, err)
			}
		case LinePattern, LineNotPattern:
			if _, err := newPatternFilter(st.val); err != nil {
				return nil, p.errorAt(st, "%s", err)
			}
		}
		texts = append(texts, st.val)
		if t := p.peek(); t.kind != tokIdent || t.text != "or" {
			break
		}
		p.next()
	}
	if op == LineContains || op == LineMatch || op == LinePattern {
		s := &LineFilterStage{Op: op, Text: texts[0]}
		if len(texts) > 1 {
			s.Or = texts[1:]
		}
		return []Stage{s}, nil
	}
	out := make([]Stage, len(texts))
	for i, t := range texts {
		out[i] = &LineFilterStage{Op: op, Text: t}
	}
	return out, nil
}

// parseParserStage parses json or logfmt with optional flags and
// parameters: | json a="x.y", b or | logfmt --strict a, b="c".
func (p *parser) parseParserStage() (Stage, error) {
	kind := ParserKind(p.next().text)
	s := &ParserStage{Kind: kind}
	for p.peek().kind == tokFlag {
		t := p.next()
		switch {
		case kind == ParserLogfmt && t.text == "--strict":
			s.Strict = true
		case kind == ParserLogfmt && t.text == "--keep-empty":
			s.KeepEmpty = true
		default:
			return nil, p.errorAt(t, "invalid %s parser flag %s", kind, t.text)
		}
	}
	if t := p.peek(); t.kind != tokIdent || t.text == "or" || t.text == "and" {
		return s, nil
	}
	for {
		name, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		x := LabelExtraction{Label: name.text, Expr: name.text}
		if p.peek().kind == tokEq {
			p.next()
			val, err := p.expect(tokString)
			if err != nil {
				return nil, err
			}
			x.Expr = val.val
			if kind == ParserJSON {
				if _, err := parseJSONPath(x.Expr); err != nil {
					return nil, p.errorAt(val, "invalid JSON path %q: %s", x.Expr, err)
				}
			} else if x.Expr == "" || strings.ContainsAny(x.Expr, " \t\r\n=\"") {
				return nil, p.errorAt(val, "invalid logfmt key %q", x.Expr)
			}
		}
		s.Extractions = append(s.Extractions, x)
		if p.peek().kind != tokComma {
			return s, nil
		}
		p.next()
	}
}

// parseLabelFilterOr parses filters joined by "or", which binds loosest.
func (p *parser) parseLabelFilterOr() (LabelFilter, error) {
	left, err := p.parseLabelFilterAnd()
	if err != nil {
		return nil, err
	}
	for {
		if t := p.peek(); t.kind != tokIdent || t.text != "or" {
			return left, nil
		}
		p.next()
		right, err := p.parseLabelFilterAnd()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{Left: left, Right: right}
	}
}

// parseLabelFilterAnd parses filters joined by "and", "," or nothing.
func (p *parser) parseLabelFilterAnd() (LabelFilter, error) {
	left, err := p.parseLabelFilterPrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch t := p.peek(); {
		case t.kind == tokIdent && t.text == "or":
			return left, nil
		case t.kind == tokIdent && t.text == "and", t.kind == tokComma:
			p.next()
		case t.kind == tokIdent, t.kind == tokLParen:
			// juxtaposition: | a="1" b="2"
		default:
			return left, nil
		}
		right, err := p.parseLabelFilterPrimary()
		if err != nil {
			return nil, err
		}
		left = &BinaryLabelFilter{And: true, Left: left, Right: right}
	}
}

var compareOps = map[tokenKind]CompareOp{
	tokEq: CmpEq, tokCmpEq: CmpEq, tokNeq: CmpNe, tokGT: CmpGt, tokGTE: CmpGte, tokLT: CmpLt, tokLTE: CmpLte,
}

// parseLabelFilterPrimary parses one comparison or a parenthesised filter.
func (p *parser) parseLabelFilterPrimary() (LabelFilter, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		f, err := p.parseLabelFilterOr()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tokRParen {
			return nil, p.unexpected(t, ") or and, or, \",\"")
		}
		return f, nil
	case tokIdent:
	default:
		return nil, p.unexpected(t, "IDENTIFIER or (")
	}
	name := t.text
	opTok := p.next()
	if !isComparison(opTok.kind) {
		return nil, p.unexpected(opTok, "= or != or =~ or !~ or > or >= or < or <= or ==")
	}
	val := p.next()
	switch val.kind {
	case tokIdent:
		if val.text == "ip" && (opTok.kind == tokEq || opTok.kind == tokNeq) {
			return p.parseIPFilter(name, opTok.kind == tokNeq)
		}
	case tokString:
		op, ok := matchOps[opTok.kind]
		if !ok {
			return nil, p.unexpected(val, "NUMBER or DURATION or BYTES")
		}
		m, err := model.NewLabelMatcher(name, op, val.val)
		if err != nil {
			return nil, p.errorAt(val, "%s", err)
		}
		return &LabelMatchFilter{Matcher: m}, nil
	case tokNumber, tokDuration, tokBytes:
		op, ok := compareOps[opTok.kind]
		if !ok {
			return nil, p.unexpected(val, "STRING")
		}
		switch val.kind {
		case tokNumber:
			v, _ := strconv.ParseFloat(val.text, 64)
			return &NumberFilter{Name: name, Op: op, Value: v}, nil
		case tokDuration:
			v, _ := parseDuration(val.text)
			return &DurationFilter{Name: name, Op: op, Value: v}, nil
		default:
			v, _ := parseBytes(val.text)
			return &BytesFilter{Name: name, Op: op, Value: v}, nil
		}
	}
	switch opTok.kind {
	case tokRe, tokNre:
		return nil, p.unexpected(val, "STRING")
	case tokEq, tokNeq:
		return nil, p.unexpected(val, "STRING or NUMBER or DURATION or BYTES")
	}
	return nil, p.unexpected(val, "NUMBER or DURATION or BYTES")
}
