//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Helpers to compare the answers of two Jaeger query APIs.

// getData GETs a Jaeger API URL and decodes the "data" of its envelope.
func getData(t *testing.T, u string, data any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	var env struct {
		Data   json.RawMessage
		Errors []struct{ Msg string }
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
	if len(env.Errors) > 0 {
		t.Fatalf("GET %s: errors %+v", u, env.Errors)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("GET %s: data: %v: %s", u, err, env.Data)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonicalTrace renders a trace of Jaeger's JSON in a form where two
// readers' answers compare equal when they mean the same: spans by id, each
// with its process inlined, tags and log fields by key (jaeger-query sorts
// them, Vigil keeps the written order), logs by time. Values stay as their
// JSON text, so a number never equals a string.
func canonicalTrace(t *testing.T, raw []byte) string {
	t.Helper()
	type kv struct {
		Key   string          `json:"key"`
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	type process struct {
		ServiceName string `json:"serviceName"`
		Tags        []kv   `json:"tags"`
	}
	type log struct {
		Timestamp int64 `json:"timestamp"`
		Fields    []kv  `json:"fields"`
	}
	type ref struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	type span struct {
		TraceID       string   `json:"traceID"`
		SpanID        string   `json:"spanID"`
		Flags         uint32   `json:"flags"`
		OperationName string   `json:"operationName"`
		References    []ref    `json:"references"`
		StartTime     int64    `json:"startTime"`
		Duration      int64    `json:"duration"`
		Tags          []kv     `json:"tags"`
		Logs          []log    `json:"logs"`
		ProcessID     string   `json:"processID,omitempty"`
		Process       *process `json:"process"`
		Warnings      []string `json:"warnings"`
	}
	var tr struct {
		TraceID   string             `json:"traceID"`
		Spans     []span             `json:"spans"`
		Processes map[string]process `json:"processes"`
		Warnings  []string           `json:"warnings"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatalf("trace JSON: %v: %s", err, raw)
	}
	byKey := func(a, b kv) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return bytes.Compare(a.Value, b.Value)
	}
	for i := range tr.Spans {
		s := &tr.Spans[i]
		p, ok := tr.Processes[s.ProcessID]
		if !ok {
			t.Errorf("trace %s span %s: processID %q not among the trace's processes", tr.TraceID, s.SpanID, s.ProcessID)
		}
		slices.SortFunc(p.Tags, byKey)
		s.Process, s.ProcessID = &p, ""
		slices.SortFunc(s.Tags, byKey)
		slices.SortStableFunc(s.Logs, func(a, b log) int { return int(a.Timestamp - b.Timestamp) })
		for _, l := range s.Logs {
			slices.SortFunc(l.Fields, byKey)
		}
	}
	slices.SortFunc(tr.Spans, func(a, b span) int { return strings.Compare(a.SpanID, b.SpanID) })
	tr.Processes = nil
	out, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// lineDiff shows the lines of got that differ from want ("-" want only,
// "+" got only), with the line before each change for context.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// lcs[i][j] is the length of the longest common subsequence of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	prev, shown := "", true
	emit := func(mark, line string) {
		if !shown {
			fmt.Fprintf(&sb, "  %s\n", prev)
		}
		fmt.Fprintf(&sb, "%s %s\n", mark, line)
		shown = true
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			prev, shown = a[i], false
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			emit("-", a[i])
			i++
		default:
			emit("+", b[j])
			j++
		}
	}
	return sb.String()
}
