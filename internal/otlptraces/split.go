package otlptraces

import "github.com/vigilhq/vigil/internal/model"

// SplitByTrace groups spans by trace id, keeping the order of first
// appearance of each trace and of the spans within it, so that each group
// can be sent as one queue message keyed by its trace id
// (model.TraceID.String()). The groups share spans' backing array only
// when every span belongs to the same trace.
func SplitByTrace(spans []model.Span) [][]model.Span {
	if len(spans) == 0 {
		return nil
	}
	same := true
	for i := 1; i < len(spans); i++ {
		if spans[i].TraceID != spans[0].TraceID {
			same = false
			break
		}
	}
	if same {
		return [][]model.Span{spans}
	}
	index := map[model.TraceID]int{}
	var out [][]model.Span
	for i := range spans {
		j, ok := index[spans[i].TraceID]
		if !ok {
			j = len(out)
			index[spans[i].TraceID] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], spans[i])
	}
	return out
}
