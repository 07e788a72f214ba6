package esprofilestore

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// doc is a profile document. Field by field, docs/profiles.md says why.
type doc struct {
	ID                string              `json:"id"`
	Type              string              `json:"type"`
	Series            string              `json:"series"`
	Labels            []string            `json:"labels,omitempty"` // "name=value"
	LabelNames        []string            `json:"label_names,omitempty"`
	Signature         string              `json:"signature"`
	TimeNanos         int64               `json:"time"`
	TimestampMs       int64               `json:"@timestamp"`
	DurationNanos     int64               `json:"duration"`
	LabelSet          map[string]string   `json:"label_set"`
	SampleTypes       []storage.ValueType `json:"sample_types"`
	DefaultSampleType string              `json:"default_sample_type,omitempty"`
	PeriodType        storage.ValueType   `json:"period_type"`
	Totals            []int64             `json:"totals"`
	Pprof             []byte              `json:"pprof,omitempty"` // gzipped; base64 in JSON
	Size              int                 `json:"size"`            // of Pprof
}

// metaFields are the source fields of a document but its pprof bytes.
var metaFields = []string{"id", "type", "time", "duration", "label_set", "sample_types", "default_sample_type", "period_type", "totals"}

// seriesID identifies a series: the hash of its type and labels.
func seriesID(typ string, ls model.Labels) string {
	return model.ProfileID(typ, ls, 0, 0, nil).String()
}

// signature names a profile's sample and period types, the key
// ProfileTypes groups by.
func signature(sts []storage.ValueType, period storage.ValueType) string {
	var b strings.Builder
	for _, st := range sts {
		fmt.Fprintf(&b, "%s/%s,", st.Type, st.Unit)
	}
	fmt.Fprintf(&b, "%s/%s", period.Type, period.Unit)
	return b.String()
}

// toDoc builds the document of p, whose pprof bytes decode to pp.
func toDoc(p *model.Profile, pp *profile.Profile) (*doc, error) {
	d := &doc{
		ID: p.ID.String(), Type: p.Type, Series: seriesID(p.Type, p.Labels),
		TimeNanos: p.TimeNanos, TimestampMs: p.TimeNanos / 1e6, DurationNanos: p.DurationNanos,
		LabelSet: make(map[string]string, len(p.Labels)), DefaultSampleType: pp.DefaultSampleType,
		Totals: make([]int64, len(pp.SampleType)),
	}
	for _, l := range p.Labels {
		d.Labels = append(d.Labels, l.Name+"="+l.Value)
		d.LabelNames = append(d.LabelNames, l.Name)
		d.LabelSet[l.Name] = l.Value
	}
	for _, st := range pp.SampleType {
		d.SampleTypes = append(d.SampleTypes, storage.ValueType{Type: st.Type, Unit: st.Unit})
	}
	if pp.PeriodType != nil {
		d.PeriodType = storage.ValueType{Type: pp.PeriodType.Type, Unit: pp.PeriodType.Unit}
	}
	d.Signature = signature(d.SampleTypes, d.PeriodType)
	for _, s := range pp.Sample {
		for i, v := range s.Value {
			d.Totals[i] += v
		}
	}
	d.Pprof = p.Pprof
	if !isGzip(p.Pprof) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(p.Pprof); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		d.Pprof = buf.Bytes()
	}
	d.Size = len(d.Pprof)
	return d, nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// labels returns the document's labels, sorted.
func (d *doc) labels() model.Labels {
	ls := make(model.Labels, 0, len(d.LabelSet))
	for k, v := range d.LabelSet {
		ls = append(ls, model.Label{Name: k, Value: v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// meta returns the document's metadata.
func (d *doc) meta() (storage.ProfileMeta, error) {
	id, err := parseID(d.ID)
	if err != nil {
		return storage.ProfileMeta{}, err
	}
	return storage.ProfileMeta{ID: id, Type: d.Type, Labels: d.labels(), TimeNanos: d.TimeNanos, DurationNanos: d.DurationNanos,
		SampleTypes: slices.Clone(d.SampleTypes), Totals: slices.Clone(d.Totals)}, nil
}

func parseID(s string) (model.RecordID, error) {
	var id model.RecordID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("stored profile id %q is not %d hex digits", s, 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}

// parseDoc parses the source of a document.
func parseDoc(id string, src json.RawMessage) (*doc, error) {
	var d doc
	if err := json.Unmarshal(src, &d); err != nil {
		return nil, fmt.Errorf("cannot parse profile document %s: %w", id, err)
	}
	return &d, nil
}
