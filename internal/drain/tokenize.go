package drain

// Token is one piece of a log line. Glued tokens followed the previous one
// without white space in the line (the value after "key="), so a pattern
// prints them back joined.
type Token struct {
	Text  string
	Glued bool
}

// MaxTokens bounds the tokens of one line; the rest of a longer line stays
// in its last token.
const MaxTokens = 128

// Tokenize splits line into tokens: at runs of spaces and tabs, and inside
// a word right after "key=" or "key:" (a key holds no digit) so that in
// "level=info" or `"status":503` the key and the value are tokens of
// their own, and around commas, which separate JSON fields. Joining
// the tokens (see Join) gives line back with each run of white space
// turned into one space and leading and trailing white space removed.
func Tokenize(line string) []Token { return appendTokens(nil, line) }

// appendTokens appends the tokens of line to toks.
func appendTokens(toks []Token, line string) []Token {
	base := len(toks)
	i := 0
	for i < len(line) {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		glued := false
		start := i
		for i < len(line) && !isSpace(line[i]) {
			c := line[i]
			i++
			if i == len(line) || isSpace(line[i]) || len(toks)-base >= MaxTokens-2 {
				continue
			}
			// Cut after "key=" and "key:" (a key has no digit, so times
			// such as 12:00:01 stay whole), and around commas.
			cut := (c == '=' || c == ':') && !hasDigit(line[start:i])
			if c == ',' || line[i] == ',' {
				cut = true
			}
			if cut {
				toks = append(toks, Token{Text: line[start:i], Glued: glued})
				glued, start = true, i
			}
		}
		if len(toks)-base == MaxTokens {
			// Keep the rest of the line in the last token.
			last := &toks[len(toks)-1]
			sep := " "
			if glued {
				sep = ""
			}
			last.Text += sep + line[start:i]
			continue
		}
		toks = append(toks, Token{Text: line[start:i], Glued: glued})
	}
	return toks
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Join prints tokens back as a line: glued tokens follow the previous one
// directly, the others after one space.
func Join(toks []Token) string {
	n := 0
	for _, t := range toks {
		n += len(t.Text) + 1
	}
	b := make([]byte, 0, n)
	for i, t := range toks {
		if i > 0 && !t.Glued {
			b = append(b, ' ')
		}
		b = append(b, t.Text...)
	}
	return string(b)
}
