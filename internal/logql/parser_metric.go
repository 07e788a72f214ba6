package logql

import (
	"regexp"
	"strconv"
	"strings"
)

var vectorOps = map[string]bool{
	OpSum: true, OpCount: true, OpMin: true, OpMax: true, OpAvg: true, OpTopK: true, OpBottomK: true,
	OpStddev: true, OpStdvar: true, OpSort: true, OpSortDesc: true,
}

// Binding power of the binary operators; ^ is right-associative.
var binOpPrec = map[string]int{
	OpOr: 1, OpAnd: 2, OpUnless: 2,
	OpEq: 3, OpNe: 3, OpGt: 3, OpGte: 3, OpLt: 3, OpLte: 3,
	OpAdd: 4, OpSub: 4, OpMul: 5, OpDiv: 5, OpMod: 5, OpPow: 6,
}

var binOpTokens = map[tokenKind]string{
	tokCmpEq: OpEq, tokNeq: OpNe, tokGT: OpGt, tokGTE: OpGte, tokLT: OpLt, tokLTE: OpLte,
	tokAdd: OpAdd, tokSub: OpSub, tokMul: OpMul, tokDiv: OpDiv, tokMod: OpMod, tokPow: OpPow,
}

// atUnwrap reports whether the next tokens are "| unwrap", which ends the
// pipeline of a range aggregation (a label named unwrap is still
// filterable: | unwrap="x").
func (p *parser) atUnwrap() bool {
	t := p.peekN(1)
	return p.peek().kind == tokPipe && t.kind == tokIdent && t.text == "unwrap" && !isComparison(p.peekN(2).kind)
}

// parseExpr parses a log query or a metric expression.
func (p *parser) parseExpr() (Expr, error) {
	return p.parseBinary(1, "")
}

// parseMetricExpr parses a metric expression; a log query there is an
// error reported as expecting what the caller says.
func (p *parser) parseMetricExpr(expecting string) (Expr, error) {
	t := p.peek()
	e, err := p.parseBinary(1, expecting)
	if err != nil {
		return nil, err
	}
	if _, ok := e.(*LogSelectorExpr); ok {
		return nil, p.errorAt(t, "syntax error: unexpected log query, expecting %s", expecting)
	}
	return e, nil
}

// peekBinOp returns the binary operator at the next token, if any. A
// negative number right after an operand is a subtraction: a -5.
func (p *parser) peekBinOp() (string, bool) {
	t := p.peek()
	switch t.kind {
	case tokIdent:
		switch t.text {
		case OpOr, OpAnd, OpUnless:
			return t.text, true
		}
	case tokNumber:
		if strings.HasPrefix(t.text, "-") {
			return OpSub, true
		}
	default:
		op, ok := binOpTokens[t.kind]
		return op, ok
	}
	return "", false
}

// consumeBinOp consumes the operator peekBinOp returned; of a negative
// number it consumes only the sign.
func (p *parser) consumeBinOp() token {
	t := p.peek()
	if t.kind == tokNumber {
		p.ahead[0].text = t.text[1:]
		p.ahead[0].pos++
		return token{kind: tokSub, pos: t.pos, text: "-"}
	}
	return p.next()
}

// parseBinary parses operands joined by operators binding at least as
// tightly as minPrec. With a non-empty expecting, a log query is not an
// operand.
func (p *parser) parseBinary(minPrec int, expecting string) (Expr, error) {
	left, err := p.parsePrimary(expecting)
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := left.(*LogSelectorExpr); ok {
			return left, nil
		}
		op, ok := p.peekBinOp()
		if !ok || binOpPrec[op] < minPrec {
			return left, nil
		}
		opTok := p.consumeBinOp()
		e := &BinOpExpr{Op: op, Left: left}
		if err := p.parseBinOpModifiers(e, opTok); err != nil {
			return nil, err
		}
		next := binOpPrec[op] + 1
		if op == OpPow {
			next = binOpPrec[op]
		}
		if err := p.enter(opTok); err != nil {
			return nil, err
		}
		right, err := p.parseBinary(next, "( or aggregation or number")
		p.leave()
		if err != nil {
			return nil, err
		}
		e.Right = right
		if err := p.checkBinOp(e, opTok); err != nil {
			return nil, err
		}
		left = e
	}
}

// parseBinOpModifiers parses bool, on/ignoring (…) and group_left/right (…).
func (p *parser) parseBinOpModifiers(e *BinOpExpr, opTok token) error {
	if t := p.peek(); t.kind == tokIdent && t.text == "bool" {
		p.next()
		if !IsComparison(e.Op) {
			return p.errorAt(t, "bool modifier can only be used on comparison operators")
		}
		e.Bool = true
	}
	t := p.peek()
	if t.kind != tokIdent || t.text != "on" && t.text != "ignoring" {
		return nil
	}
	p.next()
	m := &VectorMatching{On: t.text == "on"}
	var err error
	if m.Labels, err = p.parseLabelList(); err != nil {
		return err
	}
	e.Matching = m
	if t := p.peek(); t.kind == tokIdent && (t.text == CardManyToOne || t.text == CardOneToMany) {
		p.next()
		if IsSetOp(e.Op) {
			return p.errorAt(t, "no grouping allowed for %q operation", e.Op)
		}
		m.Card = t.text
		if p.peek().kind == tokLParen {
			if m.Include, err = p.parseLabelList(); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBinOp applies Prometheus' rules on operand types.
func (p *parser) checkBinOp(e *BinOpExpr, opTok token) error {
	ls, rs := IsScalar(e.Left), IsScalar(e.Right)
	switch {
	case IsSetOp(e.Op) && (ls || rs):
		return p.errorAt(opTok, "set operator %q not allowed in binary scalar expression", e.Op)
	case e.Matching != nil && (ls || rs):
		return p.errorAt(opTok, "vector matching only allowed between instant vectors")
	case IsComparison(e.Op) && ls && rs && !e.Bool:
		return p.errorAt(opTok, "comparisons between scalars must use BOOL modifier")
	}
	return nil
}

// parseLabelList parses (a, b, …), possibly empty.
func (p *parser) parseLabelList() ([]string, error) {
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	if p.peek().kind == tokRParen {
		p.next()
		return nil, nil
	}
	var names []string
	for {
		t, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		names = append(names, t.text)
		switch t := p.next(); t.kind {
		case tokComma:
		case tokRParen:
			return names, nil
		default:
			return nil, p.unexpected(t, ", or )")
		}
	}
}

// parsePrimary parses an operand: a log query (unless expecting is set), a
// parenthesised expression, an aggregation, a function or a number.
func (p *parser) parsePrimary(expecting string) (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tokLBrace:
		if expecting != "" {
			return nil, p.unexpected(t, expecting)
		}
		return p.parseLogExpr()
	case tokLParen:
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		e, err := p.parseBinary(1, "")
		if err != nil {
			return nil, err
		}
		sel, isLog := e.(*LogSelectorExpr)
		if t, err := p.expect(tokRParen); err != nil {
			if isLog {
				return nil, p.unexpected(t, "pipeline stage or )")
			}
			return nil, err
		}
		if isLog {
			if expecting != "" {
				return nil, p.errorAt(t, "syntax error: unexpected log query, expecting %s", expecting)
			}
			// ({…} |= "a") | json continues the same pipeline.
			return sel, p.parseStages(sel)
		}
		return e, nil
	case tokNumber:
		p.next()
		v, _ := strconv.ParseFloat(t.text, 64)
		return &LiteralExpr{Val: v}, nil
	case tokIdent:
		_, isRange := rangeOpRules[t.text]
		switch {
		case isRange:
			return p.parseRangeAggregation()
		case vectorOps[t.text]:
			return p.parseVectorAggregation()
		case t.text == "vector" && p.peekN(1).kind == tokLParen:
			return p.parseVector()
		case t.text == "label_replace" && p.peekN(1).kind == tokLParen:
			return p.parseLabelReplace()
		case p.peekN(1).kind == tokLParen:
			return nil, p.errorAt(t, "unknown function %q", t.text)
		}
	}
	if expecting == "" {
		expecting = "{ or ( or aggregation"
	}
	return nil, p.unexpected(t, expecting)
}

// parseRangeAggregation parses op([φ,] <log query> [| unwrap …] [range]
// [offset d]) [by|without (…)], where the log query (with its unwrap) may
// be parenthesised, or, as Loki allows, op({…} [range] [offset d]
// [pipeline] [| unwrap …]).
func (p *parser) parseRangeAggregation() (Expr, error) {
	op := p.next()
	if err := p.enter(op); err != nil {
		return nil, err
	}
	defer p.leave()
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	e := &RangeAggregationExpr{Op: op.text}
	if t := p.peek(); t.kind == tokNumber {
		if op.text != OpQuantileOverTime {
			return nil, p.errorAt(t, "unsupported parameter for operation %s(%s,", op.text, t.text)
		}
		p.next()
		e.Param, _ = strconv.ParseFloat(t.text, 64)
		if _, err := p.expect(tokComma); err != nil {
			return nil, err
		}
	} else if op.text == OpQuantileOverTime {
		return nil, p.unexpected(t, "NUMBER")
	}
	var err error
	expecting := "[ or pipeline stage"
	switch t := p.peek(); t.kind {
	case tokLBrace:
		if e.Selector, err = p.parseLogExpr(); err != nil {
			return nil, err
		}
		if e.Unwrap, err = p.parseUnwrap(); err != nil {
			return nil, err
		}
	case tokLParen:
		p.next()
		if t := p.peek(); t.kind != tokLBrace {
			return nil, p.unexpected(t, "{")
		}
		if e.Selector, err = p.parseLogExpr(); err != nil {
			return nil, err
		}
		if e.Unwrap, err = p.parseUnwrap(); err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tokRParen {
			return nil, p.unexpected(t, "pipeline stage or )")
		}
		expecting = "["
	default:
		return nil, p.unexpected(t, "{ or (")
	}
	if e.Unwrap != nil {
		expecting = "[ or |"
	}
	if t := p.next(); t.kind != tokLBracket {
		return nil, p.unexpected(t, expecting)
	}
	rt, err := p.expect(tokDuration)
	if err != nil {
		return nil, err
	}
	e.Range, _ = parseDuration(rt.text)
	if e.Range <= 0 {
		return nil, p.errorAt(rt, "invalid range %s: want a positive duration", rt.text)
	}
	if _, err := p.expect(tokRBracket); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tokIdent && t.text == "offset" {
		p.next()
		ot, err := p.expect(tokDuration)
		if err != nil {
			return nil, err
		}
		if e.Offset, _ = parseDuration(ot.text); e.Offset < 0 {
			return nil, p.errorAt(ot, "invalid offset %s: want a positive duration", ot.text)
		}
	}
	if len(e.Selector.Stages) == 0 && e.Unwrap == nil {
		// Loki also takes the pipeline after the range: {…}[5m] |= "x".
		if err := p.parseStages(e.Selector); err != nil {
			return nil, err
		}
		if e.Unwrap, err = p.parseUnwrap(); err != nil {
			return nil, err
		}
	}
	if t, err := p.expect(tokRParen); err != nil {
		if t.kind == tokIdent && t.text != "offset" {
			return nil, p.unexpected(t, "offset or )")
		}
		return nil, err
	}
	if t := p.peek(); t.kind == tokIdent && (t.text == "by" || t.text == "without") {
		p.next()
		e.Grouped, e.Without = true, t.text == "without"
		if e.Grouping, err = p.parseLabelList(); err != nil {
			return nil, err
		}
	}
	rule := rangeOpRules[e.Op]
	switch {
	case e.Grouped && !rule.grouped:
		return nil, p.errorAt(op, "grouping not allowed for %s aggregation", e.Op)
	case e.Unwrap != nil && rule.unwrap == 0:
		return nil, p.errorAt(op, "invalid aggregation %s with unwrap", e.Op)
	case e.Unwrap == nil && rule.unwrap == 1:
		return nil, p.errorAt(op, "invalid aggregation %s without unwrap", e.Op)
	}
	return e, nil
}

// parseUnwrap parses | unwrap label, | unwrap conv(label) and the label
// filters after it, or nothing.
func (p *parser) parseUnwrap() (*UnwrapExpr, error) {
	if !p.atUnwrap() {
		return nil, nil
	}
	p.next()
	p.next()
	name, err := p.expect(tokIdent)
	if err != nil {
		return nil, err
	}
	u := &UnwrapExpr{Label: name.text}
	if p.peek().kind == tokLParen {
		switch name.text {
		case ConvDuration, ConvDurationSeconds, ConvBytes:
		default:
			return nil, p.errorAt(name, "invalid unwrap conversion %q: want duration, duration_seconds or bytes", name.text)
		}
		p.next()
		label, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen); err != nil {
			return nil, err
		}
		u.Conv, u.Label = name.text, label.text
	}
	for p.peek().kind == tokPipe {
		p.next()
		f, err := p.parseLabelFilterOr()
		if err != nil {
			return nil, err
		}
		u.Filters = append(u.Filters, f)
	}
	return u, nil
}

// parseVector parses vector(N).
func (p *parser) parseVector() (Expr, error) {
	p.next()
	p.next()
	t, err := p.expect(tokNumber)
	if err != nil {
		return nil, err
	}
	v, _ := strconv.ParseFloat(t.text, 64)
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	return &VectorExpr{Val: v}, nil
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// parseLabelReplace parses label_replace(v, "dst", "repl", "src", "regex").
func (p *parser) parseLabelReplace() (Expr, error) {
	fn := p.next()
	if err := p.enter(fn); err != nil {
		return nil, err
	}
	defer p.leave()
	p.next()
	inner, err := p.parseMetricExpr("( or aggregation")
	if err != nil {
		return nil, err
	}
	var args [4]token
	for i := range args {
		if _, err := p.expect(tokComma); err != nil {
			return nil, err
		}
		if args[i], err = p.expect(tokString); err != nil {
			return nil, err
		}
	}
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	e := &LabelReplaceExpr{Inner: inner, Dst: args[0].val, Replacement: args[1].val, Src: args[2].val, Regex: args[3].val}
	if !labelNameRE.MatchString(e.Dst) {
		return nil, p.errorAt(args[0], "invalid destination label name in label_replace(): %s", e.Dst)
	}
	if _, err := regexp.Compile("^(?:" + e.Regex + ")$"); err != nil {
		return nil, p.errorAt(args[3], "invalid regular expression in label_replace(): %s", e.Regex)
	}
	return e, nil
}
