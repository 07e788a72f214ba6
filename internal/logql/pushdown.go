package logql

// RequiredSubstrings returns the texts every line of the result contains,
// case-sensitively: the `|= "text"` filters, and the `|~` filters whose
// regexp is a plain literal, that come before the first parser or label
// filter. Stores use them to skip blocks (bloom filters) or to narrow a
// search; the pipeline still applies every filter.
func (e *LogSelectorExpr) RequiredSubstrings() []string {
	exact, _ := e.required()
	return exact
}

// RequiredFoldSubstrings returns the lower-case texts every line of the
// result contains ignoring ASCII case: the `|~ "(?i)text"` filters before
// the first parser or label filter.
func (e *LogSelectorExpr) RequiredFoldSubstrings() []string {
	_, fold := e.required()
	return fold
}

func (e *LogSelectorExpr) required() (exact, fold []string) {
	add := func(list []string, s string) []string {
		for _, t := range list {
			if t == s {
				return list
			}
		}
		return append(list, s)
	}
	for _, s := range e.Stages {
		lf, ok := s.(*LineFilterStage)
		if !ok {
			break
		}
		if len(lf.Or) > 0 || lf.IP {
			continue // no single text is required
		}
		switch lf.Op {
		case LineContains:
			if lf.Text != "" {
				exact = add(exact, lf.Text)
			}
		case LineMatch:
			lit, isFold, ok := literalRegexp(lf.Text)
			switch {
			case !ok || lit == "":
			case isFold:
				fold = add(fold, lit)
			default:
				exact = add(exact, lit)
			}
		}
	}
	return exact, fold
}

// RequiredAlternatives returns, for each `|= "a" or "b"` filter (and `|~`
// whose alternatives are all plain literals) before the first parser or
// label filter, the texts of which every line of the result contains at
// least one, case-sensitively. A group with an empty text, which every
// line contains, is left out.
func (e *LogSelectorExpr) RequiredAlternatives() [][]string {
	var out [][]string
stages:
	for _, s := range e.Stages {
		lf, ok := s.(*LineFilterStage)
		if !ok {
			break
		}
		if len(lf.Or) == 0 || lf.IP || lf.Op != LineContains && lf.Op != LineMatch {
			continue
		}
		group := make([]string, 0, 1+len(lf.Or))
		for _, t := range append([]string{lf.Text}, lf.Or...) {
			if lf.Op == LineMatch {
				lit, fold, ok := literalRegexp(t)
				if !ok || fold {
					continue stages
				}
				t = lit
			}
			if t == "" {
				continue stages
			}
			group = append(group, t)
		}
		out = append(out, group)
	}
	return out
}
