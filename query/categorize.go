package query

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// Loki 3's response encoding flags, asked for in a request header. With
// categorize-labels, a log result's streams carry only stream labels and
// every entry a third element with its structured metadata and parsed
// labels apart (Grafana builds "filter for value" from it).
const (
	encodingFlagsHeader  = "X-Loki-Response-Encoding-Flags"
	flagCategorizeLabels = "categorize-labels"
)

// categorizeLabels reports whether r asks for categorize-labels.
func categorizeLabels(r *http.Request) bool {
	for _, h := range r.Header.Values(encodingFlagsHeader) {
		for _, f := range strings.Split(h, ",") {
			if strings.TrimSpace(f) == flagCategorizeLabels {
				return true
			}
		}
	}
	return false
}

// labelCategory says where a result label came from.
type labelCategory int

const (
	categoryStream labelCategory = iota
	categoryMetadata
	categoryParsed
)

// categoryOf classifies a result label by name: the stream labels of the
// stores and their aliases, the per-line metadata Vigil keeps as Loki keeps
// structured metadata, and everything else, which a parser or a pipeline
// stage added.
func categoryOf(name string) labelCategory {
	switch name {
	case model.LabelServiceName:
		return categoryStream
	case labelTraceID, labelSpanID, model.LabelDetectedLevel:
		return categoryMetadata
	}
	if slices.Contains(model.StreamLabelNames, name) {
		return categoryStream
	}
	return categoryParsed
}

// categorizedEntry is [ts, line, {"structuredMetadata":{…},"parsed":{…}}].
type categorizedEntry struct {
	ts       int64
	line     string
	metadata model.Labels
	parsed   model.Labels
}

func (e categorizedEntry) MarshalJSON() ([]byte, error) {
	b := append([]byte(`["`), strconv.FormatInt(e.ts, 10)...)
	b = append(b, `",`...)
	b = appendJSONString(b, e.line)
	b = append(b, `,{`...)
	if len(e.metadata) > 0 {
		b = append(b, `"structuredMetadata":`...)
		b = appendLabelsJSON(b, e.metadata)
	}
	if len(e.parsed) > 0 {
		if len(e.metadata) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"parsed":`...)
		b = appendLabelsJSON(b, e.parsed)
	}
	return append(b, "}]"...), nil
}

func appendLabelsJSON(b []byte, ls model.Labels) []byte {
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	}
	return append(b, '}')
}

// writeCategorizedStreams writes a log result as Loki 3 does under
// categorize-labels: one stream per set of stream labels, its entries in
// the query's direction.
func writeCategorizedStreams(w http.ResponseWriter, streams []Stream, backward bool, st Stats, took time.Duration) {
	type stream struct {
		Stream map[string]string  `json:"stream"`
		Values []categorizedEntry `json:"values"`
	}
	byKey := map[string]*stream{}
	var order []string
	var key []byte
	for _, s := range streams {
		var sl, md, pa model.Labels
		for _, l := range s.Labels {
			switch categoryOf(l.Name) {
			case categoryStream:
				sl = append(sl, l)
			case categoryMetadata:
				md = append(md, l)
			default:
				pa = append(pa, l)
			}
		}
		key = appendLabelsKey(key[:0], sl)
		out := byKey[string(key)]
		if out == nil {
			out = &stream{Stream: sl.Map()}
			byKey[string(key)] = out
			order = append(order, string(key))
		}
		for _, e := range s.Entries {
			out.Values = append(out.Values, categorizedEntry{ts: e.Timestamp, line: e.Line, metadata: md, parsed: pa})
		}
	}
	result := make([]*stream, len(order))
	for i, k := range order {
		s := byKey[k]
		slices.SortStableFunc(s.Values, func(a, b categorizedEntry) int {
			if backward {
				return cmp.Compare(b.ts, a.ts)
			}
			return cmp.Compare(a.ts, b.ts)
		})
		result[i] = s
	}
	writeData(w, map[string]any{
		"resultType":    "streams",
		"encodingFlags": []string{flagCategorizeLabels},
		"result":        result,
		"stats":         statsJSON(st, took),
	})
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
