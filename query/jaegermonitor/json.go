package jaegermonitor

import (
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// The JSON of Jaeger's metrics.MetricFamily (api_v2/metrics/openmetrics.proto)
// as its query service writes it with jsonpb: lowerCamelCase names, the
// enum by name, empty fields left out, timestamps in RFC 3339.
type family struct {
	Name    string    `json:"name,omitempty"`
	Type    string    `json:"type,omitempty"`
	Help    string    `json:"help,omitempty"`
	Metrics []*metric `json:"metrics,omitempty"`
}

type metric struct {
	Labels       []label `json:"labels,omitempty"`
	MetricPoints []point `json:"metricPoints,omitempty"`
}

type label struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

type point struct {
	GaugeValue gauge     `json:"gaugeValue"`
	Timestamp  timestamp `json:"timestamp"`
}

type gauge struct {
	DoubleValue protoDouble `json:"doubleValue"`
}

// protoDouble is a double as jsonpb writes it: a number, or the strings
// "NaN", "Infinity" and "-Infinity" (histogram_quantile of no calls is
// NaN).
type protoDouble float64

func (d protoDouble) MarshalJSON() ([]byte, error) {
	f := float64(d)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(f)
}

// timestamp is Unix milliseconds, written as a google.protobuf.Timestamp:
// RFC 3339 in UTC with 0 or 3 fractional digits.
type timestamp int64

func (t timestamp) MarshalJSON() ([]byte, error) {
	tm := time.UnixMilli(int64(t)).UTC()
	layout := `"2006-01-02T15:04:05Z"`
	if t%1000 != 0 {
		layout = `"2006-01-02T15:04:05.000Z"`
	}
	return []byte(tm.Format(layout)), nil
}

// envelope is Jaeger's structured response, of minstep and of errors.
type envelope struct {
	Data   any             `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []envelopeError `json:"errors"`
}

type envelopeError struct {
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(envelope{Errors: []envelopeError{{Code: code, Msg: err.Error()}}})
}
