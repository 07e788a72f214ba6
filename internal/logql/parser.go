package logql

import (
	"fmt"
	"strconv"

	"github.com/vigilhq/vigil/internal/model"
)

// maxDepth bounds the nesting of parentheses and aggregations, so that a
// hostile query cannot exhaust the stack.
const maxDepth = 64

// ParseExpr parses a log or metric query. Errors are *ParseError.
func ParseExpr(q string) (Expr, error) {
	p := &parser{src: q, lex: lexer{src: q}}
	parenthesised := p.peek().kind == tokLParen
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		expecting := "end of input"
		switch e := e.(type) {
		case *LogSelectorExpr:
			if p.atUnwrap() {
				return nil, p.errorAt(p.peekN(1), `unsupported pipeline stage "unwrap" in a log query: unwrap belongs in a range aggregation such as sum_over_time({…} | unwrap x [5m])`)
			}
			expecting = "pipeline stage or end of input"
		case *VectorAggregationExpr:
			if e.Grouping == nil && !e.Without && !parenthesised {
				expecting = "by, without or end of input"
			}
		}
		return nil, p.unexpected(t, expecting)
	}
	return e, nil
}

// ParseLogSelector parses a log query: a stream selector and its pipeline.
// Errors are *ParseError.
func ParseLogSelector(q string) (*LogSelectorExpr, error) {
	p := &parser{src: q, lex: lexer{src: q}}
	if t := p.peek(); t.kind != tokLBrace {
		return nil, p.unexpected(t, "{")
	}
	e, err := p.parseLogExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.unexpected(t, "pipeline stage or end of input")
	}
	return e, nil
}

type parser struct {
	src   string
	lex   lexer
	ahead []token // lexed but not consumed
	depth int
}

func (p *parser) peekN(n int) token {
	for len(p.ahead) <= n {
		p.ahead = append(p.ahead, p.lex.next())
	}
	return p.ahead[n]
}

func (p *parser) peek() token { return p.peekN(0) }

func (p *parser) next() token {
	t := p.peek()
	p.ahead = p.ahead[1:]
	return t
}

func (p *parser) unexpected(t token, expecting string) error {
	return syntaxError(p.src, t, expecting)
}

func (p *parser) errorAt(t token, format string, args ...any) error {
	return newParseError(p.src, t.pos, fmt.Sprintf(format, args...))
}

// expect consumes a token of kind k.
func (p *parser) expect(k tokenKind) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.unexpected(t, k.String())
	}
	return t, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorAt(t, "expression nested too deeply")
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseVectorAggregation parses op [grouping] ([k,] expr) [grouping].
func (p *parser) parseVectorAggregation() (Expr, error) {
	op := p.next()
	if err := p.enter(op); err != nil {
		return nil, err
	}
	defer p.leave()
	e := &VectorAggregationExpr{Op: op.text}
	grouped := false
	if t := p.peek(); t.kind == tokIdent && (t.text == "by" || t.text == "without") {
		if err := p.parseGrouping(e); err != nil {
			return nil, err
		}
		grouped = true
	}
	if t := p.next(); t.kind != tokLParen {
		if grouped {
			return nil, p.unexpected(t, "(")
		}
		return nil, p.unexpected(t, "( or by or without")
	}
	if op.text == OpTopK || op.text == OpBottomK {
		t, err := p.expect(tokNumber)
		if err != nil {
			return nil, err
		}
		k, err := strconv.Atoi(t.text)
		if err != nil || k <= 0 {
			return nil, p.errorAt(t, "invalid parameter %s for %s: want a positive integer", t.text, op.text)
		}
		e.Param = k
		if _, err := p.expect(tokComma); err != nil {
			return nil, err
		}
	} else if t := p.peek(); t.kind == tokNumber && p.peekN(1).kind == tokComma {
		return nil, p.errorAt(t, "unsupported parameter for operation %s(%s,", op.text, t.text)
	}
	inner, err := p.parseMetricExpr("( or aggregation")
	if err != nil {
		return nil, err
	}
	e.Inner = inner
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	if t := p.peek(); !grouped && t.kind == tokIdent && (t.text == "by" || t.text == "without") {
		if err := p.parseGrouping(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// parseGrouping parses by (a, b) or without (a, b).
func (p *parser) parseGrouping(e *VectorAggregationExpr) error {
	kw := p.next()
	e.Without = kw.text == "without"
	var err error
	e.Grouping, err = p.parseLabelList()
	return err
}

// parseLogExpr parses a stream selector and its pipeline stages.
func (p *parser) parseLogExpr() (*LogSelectorExpr, error) {
	ms, err := p.parseSelector()
	if err != nil {
		return nil, err
	}
	e := &LogSelectorExpr{Matchers: ms}
	return e, p.parseStages(e)
}

// parseStages appends pipeline stages to e until the next token cannot
// start one.
func (p *parser) parseStages(e *LogSelectorExpr) error {
	for {
		t := p.peek()
		var op LineFilterOp
		switch t.kind {
		case tokPipeExact:
			op = LineContains
		case tokNeq:
			op = LineNotContains
		case tokPipeMatch:
			op = LineMatch
		case tokNre:
			op = LineNotMatch
		case tokPipePatt:
			op = LinePattern
		case tokNotPatt:
			op = LineNotPattern
		case tokPipe:
			if p.atUnwrap() {
				return nil // the range aggregation reads it
			}
			p.next()
			s, err := p.parsePipeStage()
			if err != nil {
				return err
			}
			e.Stages = append(e.Stages, s)
			continue
		default:
			return nil
		}
		if endsWithBareName(e.Stages) && (op == LineNotContains || op == LineNotMatch || op == LineNotPattern) {
			return p.unexpected(t, "pipeline stage or )")
		}
		p.next()
		fs, err := p.parseLineFilter(op)
		if err != nil {
			return err
		}
		e.Stages = append(e.Stages, fs...)
	}
}

// parseSelector parses {name op "value", ...}.
func (p *parser) parseSelector() ([]*model.LabelMatcher, error) {
	open, err := p.expect(tokLBrace)
	if err != nil {
		return nil, err
	}
	var ms []*model.LabelMatcher
	for {
		m, err := p.parseMatcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		t := p.next()
		if t.kind == tokRBrace {
			break
		}
		if t.kind != tokComma {
			return nil, p.unexpected(t, "} or ,")
		}
	}
	for _, m := range ms {
		if !m.Matches("") {
			return ms, nil
		}
	}
	return nil, p.errorAt(open, `queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will`)
}

var matchOps = map[tokenKind]model.MatchOp{
	tokEq: model.MatchEqual, tokNeq: model.MatchNotEqual, tokRe: model.MatchRegexp, tokNre: model.MatchNotRegexp,
}

// parseMatcher parses name op "value" with a string operator.
func (p *parser) parseMatcher() (*model.LabelMatcher, error) {
	name, err := p.expect(tokIdent)
	if err != nil {
		return nil, err
	}
	opTok := p.next()
	op, ok := matchOps[opTok.kind]
	if !ok {
		return nil, p.unexpected(opTok, "= or != or =~ or !~")
	}
	val, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	m, err := model.NewLabelMatcher(name.text, op, val.val)
	if err != nil {
		return nil, p.errorAt(val, "%s", err)
	}
	return m, nil
}
