package logql

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// ErrSampleExtraction is the __error__ value of a sample whose unwrapped
// label does not convert to a number.
const ErrSampleExtraction = "SampleExtractionErr"

// Unwrapper turns the labels of a line into a sample value. It is compiled
// once by UnwrapExpr.Compile and is safe for concurrent use.
type Unwrapper struct {
	label string
	conv  func(string) (float64, error)
	post  *Pipeline // label filters after the unwrap; nil without any
}

// Compile prepares u for evaluation.
func (u *UnwrapExpr) Compile() (*Unwrapper, error) {
	w := &Unwrapper{label: u.Label}
	switch u.Conv {
	case ConvFloat:
		w.conv = func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	case ConvDuration, ConvDurationSeconds:
		w.conv = func(s string) (float64, error) {
			d, err := time.ParseDuration(s)
			return d.Seconds(), err
		}
	case ConvBytes:
		w.conv = func(s string) (float64, error) {
			b, err := parseBytes(s)
			return float64(b), err
		}
	default:
		return nil, fmt.Errorf("unsupported unwrap conversion %q", u.Conv)
	}
	if len(u.Filters) > 0 {
		sel := &LogSelectorExpr{}
		for _, f := range u.Filters {
			sel.Stages = append(sel.Stages, &LabelFilterStage{Filter: f})
		}
		p, err := sel.Pipeline()
		if err != nil {
			return nil, err
		}
		w.post = p
	}
	return w, nil
}

// Sample returns the value of the unwrapped label of a line whose labels,
// sorted by name, are lbls, and the sample's labels: lbls without the
// unwrapped label, plus __error__="SampleExtractionErr" when the value does
// not convert (the value is then 0). ok is false when the line has no such
// label (or an empty one) or a filter after the unwrap drops it. The
// labels are built in buf, which the caller reuses.
func (w *Unwrapper) Sample(line string, lbls model.Labels, buf model.Labels) (v float64, out model.Labels, ok bool) {
	s := lbls.Get(w.label)
	if s == "" {
		return 0, nil, false
	}
	v, err := w.conv(s)
	if err != nil {
		v = 0
		lbls = withLabel(lbls, ErrorLabel, ErrSampleExtraction)
	}
	if w.post != nil {
		if lbls, ok = w.post.Process(line, lbls); !ok {
			return 0, nil, false
		}
	}
	out = buf[:0]
	for _, l := range lbls {
		if l.Name != w.label {
			out = append(out, l)
		}
	}
	return v, out, true
}

// withLabel returns a copy of ls with name set to value.
func withLabel(ls model.Labels, name, value string) model.Labels {
	out := make(model.Labels, 0, len(ls)+1)
	for _, l := range ls {
		if l.Name != name {
			out = append(out, l)
		}
	}
	out = append(out, model.Label{Name: name, Value: value})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
