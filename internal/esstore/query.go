package esstore

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
)

// maxGrade is the largest grade a document can hold (vigil.grade is a byte).
const maxGrade = 127

// query is a translated selection: the Elasticsearch query, and whether it
// selects exactly what the matchers select (false when some regular
// expression could not be translated: the caller filters rows in Go).
type query struct {
	q     map[string]any
	exact bool
}

var matchNone = map[string]any{"match_none": map[string]any{}}

// translate builds the query for a time range, stream matchers and line
// filters. Contains and ContainsFold are only narrowed, never exact:
// callers verify them on each message.
func translate(start, end int64, ms []*model.LabelMatcher, contains, containsFold []string) query {
	if end <= 0 || start >= end {
		return query{q: matchNone, exact: true}
	}
	var filter, mustNot []any
	if r := timeRange(start, end); r != nil {
		filter = append(filter, r)
	}
	exact := true
	for _, m := range ms {
		f, n, ok, none := matcherClauses(m)
		if none {
			return query{q: matchNone, exact: true}
		}
		exact = exact && ok
		filter = append(filter, f...)
		mustNot = append(mustNot, n...)
	}
	for _, s := range contains {
		if c := containsClause(s, false); c != nil {
			filter = append(filter, c)
		}
	}
	for _, s := range containsFold {
		if c := containsClause(s, true); c != nil {
			filter = append(filter, c)
		}
	}
	b := map[string]any{}
	if len(filter) > 0 {
		b["filter"] = filter
	}
	if len(mustNot) > 0 {
		b["must_not"] = mustNot
	}
	if len(b) == 0 {
		return query{q: map[string]any{"match_all": map[string]any{}}, exact: exact}
	}
	return query{q: map[string]any{"bool": b}, exact: exact}
}

// withAny narrows q to documents whose message contains at least one
// text of each group (SelectParams.ContainsAny). Like the other line
// filters it only narrows: callers verify each message. A group with a
// text that cannot be translated is left to that check.
func (q query) withAny(groups [][]string) query {
	var clauses []any
groups:
	for _, g := range groups {
		var should []any
		for _, s := range g {
			c := containsClause(s, false)
			if c == nil {
				continue groups
			}
			should = append(should, c)
		}
		if len(should) > 0 {
			clauses = append(clauses, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
		}
	}
	if len(clauses) == 0 || isMatchNone(q.q) {
		return q
	}
	b, ok := q.q["bool"].(map[string]any)
	if !ok { // match_all
		b = map[string]any{}
	}
	filter, _ := b["filter"].([]any)
	b["filter"] = append(filter, clauses...)
	return query{q: map[string]any{"bool": b}, exact: q.exact}
}

// timeRange selects [start, end) on @timestamp, to the nanosecond. Bounds
// outside date_nanos' range (1970 to 2262) are left open.
func timeRange(start, end int64) map[string]any {
	r := map[string]any{}
	if start > 0 {
		r["gte"] = string(appendTime(nil, start))
	}
	if end < math.MaxInt64 {
		r["lt"] = string(appendTime(nil, end))
	}
	if len(r) == 0 {
		return nil
	}
	r["format"] = "strict_date_optional_time_nanos"
	return map[string]any{"range": map[string]any{fTimestamp: r}}
}

func term(field string, v any) map[string]any {
	return map[string]any{"term": map[string]any{field: v}}
}

func exists(field string) map[string]any {
	return map[string]any{"exists": map[string]any{"field": field}}
}

// matcherClauses translates one matcher. An absent field is the empty
// value: service!="x" keeps documents without service.name, level=""
// selects documents without log.level. ok is false when the matcher could
// not be translated (no clause is added; filter in Go); none is true when
// nothing can match.
func matcherClauses(m *model.LabelMatcher) (filter, mustNot []any, ok, none bool) {
	field, known := labelField(m.Name)
	if !known {
		// not a stream label: every document has it empty
		return nil, nil, true, !m.Matches("")
	}
	if field == fGrade {
		return gradeClauses(m)
	}
	emptyMatches := m.Matches("")
	switch m.Op {
	case model.MatchEqual:
		if m.Value == "" {
			return nil, []any{exists(field)}, true, false
		}
		return []any{term(field, m.Value)}, nil, true, false
	case model.MatchNotEqual:
		if m.Value == "" {
			return []any{exists(field)}, nil, true, false
		}
		return nil, []any{term(field, m.Value)}, true, false
	case model.MatchRegexp:
		re, ok := luceneRegexp(m.Value)
		if !ok {
			return nil, nil, false, false
		}
		rq := map[string]any{"regexp": map[string]any{field: map[string]any{"value": re, "flags": "NONE"}}}
		if !emptyMatches {
			return []any{rq}, nil, true, false
		}
		either := map[string]any{"bool": map[string]any{
			"should":               []any{rq, map[string]any{"bool": map[string]any{"must_not": []any{exists(field)}}}},
			"minimum_should_match": 1,
		}}
		return []any{either}, nil, true, false
	case model.MatchNotRegexp:
		re, ok := luceneRegexp(m.Value)
		if !ok {
			return nil, nil, false, false
		}
		rq := map[string]any{"regexp": map[string]any{field: map[string]any{"value": re, "flags": "NONE"}}}
		if !emptyMatches { // the regexp matches "": documents without the field are excluded too
			return []any{exists(field)}, []any{rq}, true, false
		}
		return nil, []any{rq}, true, false
	}
	return nil, nil, false, false
}

// gradeClauses translates a matcher on the numeric vigil.grade: the label
// is "1".."127" or absent, so every operator becomes a set of values,
// computed by trying each.
func gradeClauses(m *model.LabelMatcher) (filter, mustNot []any, ok, none bool) {
	var vals []any
	for g := 1; g <= maxGrade; g++ {
		if m.Matches(strconv.Itoa(g)) {
			vals = append(vals, g)
		}
	}
	emptyMatches := m.Matches("")
	switch {
	case len(vals) == maxGrade && emptyMatches:
		return nil, nil, true, false
	case len(vals) == maxGrade:
		return []any{exists(fGrade)}, nil, true, false
	case len(vals) == 0 && emptyMatches:
		return nil, []any{exists(fGrade)}, true, false
	case len(vals) == 0:
		return nil, nil, true, true
	}
	// the smaller of the value set and its complement
	var others []any
	for g := 1; g <= maxGrade; g++ {
		if !m.Matches(strconv.Itoa(g)) {
			others = append(others, g)
		}
	}
	if len(vals) <= len(others) {
		t := valuesQuery(fGrade, vals)
		if emptyMatches {
			return []any{map[string]any{"bool": map[string]any{
				"should":               []any{t, map[string]any{"bool": map[string]any{"must_not": []any{exists(fGrade)}}}},
				"minimum_should_match": 1,
			}}}, nil, true, false
		}
		return []any{t}, nil, true, false
	}
	t := valuesQuery(fGrade, others)
	if emptyMatches {
		return nil, []any{t}, true, false
	}
	return []any{exists(fGrade)}, []any{t}, true, false
}

func valuesQuery(field string, vals []any) map[string]any {
	if len(vals) == 1 {
		return term(field, vals[0])
	}
	return map[string]any{"terms": map[string]any{field: vals}}
}

// containsClause narrows to messages that may contain s, using the
// whitespace-split terms of message.ws: s split at whitespace gives pieces;
// a piece with whitespace on both sides inside s is a whole term of the
// message, the first piece ends a term, the last one starts a term, and a
// lone piece is inside a term. Terms are cut at 255 characters, so messages
// flagged vigil.long_tokens always pass. Pieces are not checked for
// adjacency: the caller verifies every message.
func containsClause(s string, fold bool) map[string]any {
	pieces := strings.FieldsFunc(s, isJavaSpace)
	if len(pieces) == 0 {
		return nil
	}
	r0, _ := utf8.DecodeRuneInString(s)
	rn, _ := utf8.DecodeLastRuneInString(s)
	leftOpen, rightOpen := !isJavaSpace(r0), !isJavaSpace(rn)
	var all []any
	for i, p := range pieces {
		lo := i == 0 && leftOpen
		ro := i == len(pieces)-1 && rightOpen
		if !lo && !ro {
			v := map[string]any{"value": p}
			if fold {
				v["case_insensitive"] = true
			}
			all = append(all, map[string]any{"term": map[string]any{fMessageWS: v}})
			continue
		}
		pat := escapeWildcard(p)
		if lo {
			pat = "*" + pat
		}
		if ro {
			pat += "*"
		}
		v := map[string]any{"value": pat}
		if fold {
			v["case_insensitive"] = true
		}
		all = append(all, map[string]any{"wildcard": map[string]any{fMessageWS: v}})
	}
	var pieceQ map[string]any
	if len(all) == 1 {
		pieceQ = all[0].(map[string]any)
	} else {
		pieceQ = map[string]any{"bool": map[string]any{"filter": all}}
	}
	return map[string]any{"bool": map[string]any{
		"should":               []any{pieceQ, term(fLongTokens, true)},
		"minimum_should_match": 1,
	}}
}

func escapeWildcard(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// containsFoldASCII reports whether sub is in s, A–Z matching a–z.
func containsFoldASCII(s, sub string) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			if lowerASCII(s[i+j]) != lowerASCII(sub[j]) {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
