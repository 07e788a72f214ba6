package logql

// parseExprParserStage parses `regexp "expr"` or `pattern "expr"` and
// checks the expression as Loki does when it builds the stage.
func (p *parser) parseExprParserStage() (Stage, error) {
	kind := ParserKind(p.next().text)
	t, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	if kind == ParserRegexp {
		_, err = newRegexpStage(t.val)
	} else {
		_, err = newPatternStage(t.val)
	}
	if err != nil {
		return nil, p.errorAt(t, "%s", err)
	}
	return &ParserStage{Kind: kind, Param: t.val}, nil
}

// parseDropKeep parses `drop a, b="c"` or `keep a, b=~"c.*"`.
func (p *parser) parseDropKeep() (Stage, error) {
	kw := p.next()
	var ms []NamedMatcher
	for {
		var nm NamedMatcher
		if _, ok := matchOps[p.peekN(1).kind]; ok && p.peek().kind == tokIdent {
			m, err := p.parseMatcher()
			if err != nil {
				return nil, err
			}
			nm = NamedMatcher{Name: m.Name, Matcher: &LabelMatchFilter{Matcher: m}}
		} else {
			name, err := p.expect(tokIdent)
			if err != nil {
				return nil, err
			}
			nm.Name = name.text
		}
		ms = append(ms, nm)
		if p.peek().kind != tokComma {
			break
		}
		p.next()
	}
	if kw.text == "drop" {
		return &DropStage{Labels: ms}, nil
	}
	return &KeepStage{Labels: ms}, nil
}

// endsWithBareName reports whether the last stage is a drop or keep whose
// last label is a bare name. A `!=` or `!~` after it would print as a
// matcher of that label (`drop a != "x"`), so the parser refuses it where
// it can only come from a parenthesised pipeline: ({…} | drop a) != "x".
func endsWithBareName(stages []Stage) bool {
	if len(stages) == 0 {
		return false
	}
	var ms []NamedMatcher
	switch s := stages[len(stages)-1].(type) {
	case *DropStage:
		ms = s.Labels
	case *KeepStage:
		ms = s.Labels
	}
	return len(ms) > 0 && ms[len(ms)-1].Matcher == nil
}

// parseLineFormat parses `line_format "template"`.
func (p *parser) parseLineFormat() (Stage, error) {
	p.next()
	t, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	if _, err := newTemplate("line", t.val); err != nil {
		return nil, p.errorAt(t, "invalid line template: %s", err)
	}
	return &LineFormatStage{Template: t.val}, nil
}

// parseLabelFormat parses `label_format dst=src, dst="template"`.
func (p *parser) parseLabelFormat() (Stage, error) {
	p.next()
	s := &LabelFormatStage{}
	seen := map[string]bool{}
	for {
		dst, err := p.expect(tokIdent)
		if err != nil {
			return nil, err
		}
		if dst.text == ErrorLabel {
			return nil, p.errorAt(dst, "%s cannot be formatted", dst.text)
		}
		if seen[dst.text] {
			return nil, p.errorAt(dst, "multiple label name '%s' not allowed in a single format operation", dst.text)
		}
		seen[dst.text] = true
		if _, err := p.expect(tokEq); err != nil {
			return nil, err
		}
		f := LabelFormat{Dst: dst.text}
		switch t := p.next(); t.kind {
		case tokIdent:
			f.Src, f.Rename = t.text, true
		case tokString:
			if _, err := newTemplate("label", t.val); err != nil {
				return nil, p.errorAt(t, "invalid template for label '%s': %s", dst.text, err)
			}
			f.Src = t.val
		default:
			return nil, p.unexpected(t, "IDENTIFIER or STRING")
		}
		s.Formats = append(s.Formats, f)
		if p.peek().kind != tokComma {
			return s, nil
		}
		p.next()
	}
}

// parseIPFilter parses the `ip("pattern")` after `name =` or `name !=`.
func (p *parser) parseIPFilter(name string, negate bool) (LabelFilter, error) {
	if _, err := p.expect(tokLParen); err != nil {
		return nil, err
	}
	t, err := p.expect(tokString)
	if err != nil {
		return nil, err
	}
	if _, err := parseIPPattern(t.val); err != nil {
		return nil, p.errorAt(t, "%s", err)
	}
	if _, err := p.expect(tokRParen); err != nil {
		return nil, err
	}
	return &IPFilter{Name: name, Negate: negate, Pattern: t.val}, nil
}
