package esstore

import (
	"regexp/syntax"
	"strings"
	"unicode"
)

// maxLuceneRegexp bounds a translated regular expression; a longer one (a
// big Unicode class, a large repetition) is evaluated in Go instead.
const maxLuceneRegexp = 8 << 10

// luceneRegexp translates a label matcher's regular expression (RE2 syntax,
// implicitly anchored at both ends, as in Prometheus and Loki) into
// Lucene's regexp syntax (always anchored). It reports false when the
// expression uses something Lucene lacks (inner anchors, word boundaries);
// the caller then filters in Go instead.
//
// The expression is parsed and re-printed rather than passed through:
// Lucene's syntax differs (no \d, \w, \s or flags; ~ & @ < > # " are
// operators), so every literal other than a letter or digit is escaped and
// every class is written out as ranges.
func luceneRegexp(expr string) (string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = stripOuterAnchors(re.Simplify())
	var b strings.Builder
	if !writeLucene(&b, re) || b.Len() > maxLuceneRegexp {
		return "", false
	}
	return b.String(), true
}

// stripOuterAnchors drops a leading ^ and a trailing $, which are no-ops in
// an anchored expression.
func stripOuterAnchors(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpBeginText, syntax.OpEndText:
		return &syntax.Regexp{Op: syntax.OpEmptyMatch}
	case syntax.OpConcat:
		subs := re.Sub
		if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
			subs = subs[1:]
		}
		if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
			subs = subs[:len(subs)-1]
		}
		if len(subs) == 0 {
			return &syntax.Regexp{Op: syntax.OpEmptyMatch}
		}
		return &syntax.Regexp{Op: syntax.OpConcat, Sub: subs}
	case syntax.OpCapture:
		return stripOuterAnchors(re.Sub[0])
	}
	return re
}

func writeLucene(b *strings.Builder, re *syntax.Regexp) bool {
	if b.Len() > maxLuceneRegexp {
		return false
	}
	switch re.Op {
	case syntax.OpEmptyMatch:
		b.WriteString("()")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				b.WriteByte('[')
				for f := r; ; {
					writeLuceneRune(b, f)
					if f = unicode.SimpleFold(f); f == r {
						break
					}
				}
				b.WriteByte(']')
				continue
			}
			writeLuceneRune(b, r)
		}
	case syntax.OpCharClass:
		return writeLuceneClass(b, re.Rune)
	case syntax.OpAnyCharNotNL:
		b.WriteString("[^\\\n]")
	case syntax.OpAnyChar:
		b.WriteByte('.')
	case syntax.OpCapture:
		b.WriteByte('(')
		if !writeLucene(b, re.Sub[0]) {
			return false
		}
		b.WriteByte(')')
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		b.WriteByte('(')
		if !writeLucene(b, re.Sub[0]) {
			return false
		}
		b.WriteByte(')')
		b.WriteByte(map[syntax.Op]byte{syntax.OpStar: '*', syntax.OpPlus: '+', syntax.OpQuest: '?'}[re.Op])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !writeLucene(b, sub) {
				return false
			}
		}
	case syntax.OpAlternate:
		b.WriteByte('(')
		for i, sub := range re.Sub {
			if i > 0 {
				b.WriteByte('|')
			}
			if !writeLucene(b, sub) {
				return false
			}
		}
		b.WriteByte(')')
	default: // OpNoMatch, inner anchors, word boundaries, OpRepeat (Simplify removes it)
		return false
	}
	return true
}

// writeLuceneClass writes a class of rune ranges [lo, hi, lo, hi…].
// Surrogate code points cannot be written as UTF-8 and are skipped: no
// valid UTF-8 value contains them.
func writeLuceneClass(b *strings.Builder, ranges []rune) bool {
	if len(ranges) == 0 {
		return false
	}
	b.WriteByte('[')
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for _, rg := range splitSurrogates(lo, hi) {
			writeLuceneRune(b, rg[0])
			if rg[1] != rg[0] {
				b.WriteByte('-')
				writeLuceneRune(b, rg[1])
			}
			n++
		}
	}
	b.WriteByte(']')
	return n > 0
}

func splitSurrogates(lo, hi rune) [][2]rune {
	const sLo, sHi = 0xd800, 0xdfff
	var out [][2]rune
	if lo < sLo {
		out = append(out, [2]rune{lo, min(hi, sLo-1)})
	}
	if hi > sHi {
		out = append(out, [2]rune{max(lo, sHi+1), hi})
	}
	return out
}

// writeLuceneRune writes r literally: letters and digits as they are,
// every other ASCII character escaped with a backslash (which Lucene reads
// as "this character"), other runes as they are.
func writeLuceneRune(b *strings.Builder, r rune) {
	if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		b.WriteByte('\\')
	}
	b.WriteRune(r)
}
