package query

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Loki's response envelope:
//
//	{"status":"success","data":{"resultType":"streams"|"matrix"|"vector","result":[...],"stats":{...}}}

func writeData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func statsJSON(st Stats, took time.Duration) map[string]any {
	secs := took.Seconds()
	perSec := func(n int64) int64 {
		if secs == 0 {
			return 0
		}
		return int64(float64(n) / secs)
	}
	return map[string]any{"summary": map[string]any{
		"execTime":                secs,
		"totalLinesProcessed":     st.LinesScanned,
		"totalBytesProcessed":     st.BytesScanned,
		"linesProcessedPerSecond": perSec(st.LinesScanned),
		"bytesProcessedPerSecond": perSec(st.BytesScanned),
	}}
}

func writeStreams(w http.ResponseWriter, streams []Stream, st Stats, took time.Duration) {
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	result := make([]stream, len(streams))
	for i, s := range streams {
		vals := make([][2]string, len(s.Entries))
		for j, e := range s.Entries {
			vals[j] = [2]string{strconv.FormatInt(e.Timestamp, 10), e.Line}
		}
		result[i] = stream{Stream: s.Labels.Map(), Values: vals}
	}
	writeData(w, map[string]any{"resultType": "streams", "result": result, "stats": statsJSON(st, took)})
}

// sample is [seconds, "value"] as Prometheus and Loki encode it.
type sample Point

func (s sample) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	b = strconv.AppendFloat(b, float64(s.T)/1e9, 'f', -1, 64)
	b = append(b, ',', '"')
	b = strconv.AppendFloat(b, s.V, 'f', -1, 64)
	return append(b, '"', ']'), nil
}

func writeMatrix(w http.ResponseWriter, series []Series, st Stats, took time.Duration) {
	type matrixSeries struct {
		Metric map[string]string `json:"metric"`
		Values []sample          `json:"values"`
	}
	result := make([]matrixSeries, len(series))
	for i, s := range series {
		vals := make([]sample, len(s.Points))
		for j, p := range s.Points {
			vals[j] = sample(p)
		}
		result[i] = matrixSeries{Metric: s.Labels.Map(), Values: vals}
	}
	writeData(w, map[string]any{"resultType": "matrix", "result": result, "stats": statsJSON(st, took)})
}

// writeScalar writes an instant query's scalar result, [time, "value"].
func writeScalar(w http.ResponseWriter, t int64, v float64) {
	writeData(w, map[string]any{"resultType": "scalar", "result": sample(Point{T: t, V: v}), "stats": statsJSON(Stats{}, 0)})
}

func writeVector(w http.ResponseWriter, series []Series, st Stats, took time.Duration) {
	type vectorSample struct {
		Metric map[string]string `json:"metric"`
		Value  sample            `json:"value"`
	}
	result := []vectorSample{}
	for _, s := range series {
		if len(s.Points) > 0 {
			result = append(result, vectorSample{Metric: s.Labels.Map(), Value: sample(s.Points[len(s.Points)-1])})
		}
	}
	writeData(w, map[string]any{"resultType": "vector", "result": result, "stats": statsJSON(st, took)})
}
