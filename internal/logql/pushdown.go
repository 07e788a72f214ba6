package logql

// RequiredSubstrings returns the texts of the |= filters that come before
// any parser or label filter stage, in order and without duplicates or
// empty strings. Every line the query returns contains each of them
// (case-sensitively), so a store may skip blocks whose bloom filter rules
// one out. It returns nil when there are none.
func (e *LogSelectorExpr) RequiredSubstrings() []string {
	var out []string
stages:
	for _, s := range e.Stages {
		switch s := s.(type) {
		case *LineFilterStage:
			if s.Op != LineContains || s.Text == "" {
				continue
			}
			for _, t := range out {
				if t == s.Text {
					continue stages
				}
			}
			out = append(out, s.Text)
		default:
			break stages
		}
	}
	return out
}
