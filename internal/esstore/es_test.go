package esstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/storage"
)

// openES opens a store with an index prefix of its own, and deletes its
// indices and template when the test ends.
func openES(t testing.TB, mod func(*Options)) *Store {
	t.Helper()
	o := DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	o.Replicas = 0
	o.Retention = 0
	o.StartTimeout = 30 * time.Second
	o.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() {
		ctx := context.Background()
		for _, idx := range catIndices(t, s) {
			s.c.Do(ctx, http.MethodDelete, "/"+idx, nil, "")
		}
		s.c.Do(ctx, http.MethodDelete, "/"+s.patPrefix+"*", nil, "")
		s.c.Do(ctx, http.MethodDelete, "/_index_template/"+s.name, nil, "")
		s.c.Do(ctx, http.MethodDelete, "/_index_template/"+strings.TrimRight(s.patPrefix, "-"), nil, "")
	})
	return s
}

func catIndices(t testing.TB, s *Store) []string {
	t.Helper()
	status, body, err := s.c.Do(context.Background(), http.MethodGet, "/_cat/indices/"+s.opts.IndexPrefix+"*?h=index&format=json", nil, "")
	if err != nil || status != 200 {
		t.Fatalf("cat indices: %d %v %s", status, err, body)
	}
	var rows []struct{ Index string }
	json.Unmarshal(body, &rows)
	var out []string
	for _, r := range rows {
		out = append(out, r.Index)
	}
	slices.Sort(out)
	return out
}

func getJSON(t testing.TB, s *Store, path string) map[string]any {
	t.Helper()
	status, body, err := s.c.Do(context.Background(), http.MethodGet, path, nil, "")
	if err != nil || status != 200 {
		t.Fatalf("GET %s: %d %v %s", path, status, err, body)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkMapping asserts the field types of a mapping ({"dynamic":…,"properties":…}).
func checkMapping(t *testing.T, where string, m map[string]any) {
	t.Helper()
	if d := fmt.Sprint(m["dynamic"]); d != "false" {
		t.Errorf("%s: dynamic = %s, want false", where, d)
	}
	field := func(path string) map[string]any {
		cur := m
		for _, p := range strings.Split(path, ".") {
			props, _ := cur["properties"].(map[string]any)
			next, _ := props[p].(map[string]any)
			if next == nil {
				if fields, _ := cur["fields"].(map[string]any); fields != nil {
					next, _ = fields[p].(map[string]any)
				}
			}
			if next == nil {
				return nil
			}
			cur = next
		}
		return cur
	}
	for path, typ := range map[string]string{
		"@timestamp": "date_nanos", "event.created": "date_nanos", "event.id": "keyword",
		"message": "text", "message.ws": "text", "log.level": "keyword", "log.file.path": "keyword",
		"service.name": "keyword", "host.name": "keyword", "trace.id": "keyword", "span.id": "keyword",
		"vigil.grade": "byte", "vigil.env": "keyword", "vigil.source": "keyword", "vigil.truncated": "boolean",
		"vigil.long_tokens": "boolean", "labels": "flattened",
	} {
		f := field(path)
		if f == nil || f["type"] != typ {
			t.Errorf("%s: field %s = %v, want type %s", where, path, f, typ)
		}
	}
	if a := field("message.ws")["analyzer"]; a != "whitespace" {
		t.Errorf("%s: message.ws analyzer = %v, want whitespace", where, a)
	}
}

func TestESTemplate(t *testing.T) {
	s := openES(t, nil)
	// a second Open installs the same template again without error
	o := s.opts
	s2, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	s2.Close()
	tpl := getJSON(t, s, "/_index_template/"+s.name)
	its := tpl["index_templates"].([]any)
	if len(its) != 1 {
		t.Fatalf("got %d templates named %s", len(its), s.name)
	}
	it := its[0].(map[string]any)["index_template"].(map[string]any)
	if p := fmt.Sprint(it["index_patterns"]); p != "["+s.opts.IndexPrefix+"*]" {
		t.Errorf("index_patterns = %s", p)
	}
	checkMapping(t, "template", it["template"].(map[string]any)["mappings"].(map[string]any))

	// the daily index created by a write has the mapping
	recs := genRecords(1)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	idx := s.dayIndex(indexDay(recs[0].Timestamp))
	m := getJSON(t, s, "/"+idx+"/_mapping")
	checkMapping(t, idx, m[idx].(map[string]any)["mappings"].(map[string]any))
	if s.ILM() {
		t.Log("cluster has ILM")
	}
}

func TestESRejected(t *testing.T) {
	s := openES(t, nil)
	ctx := context.Background()
	recs := genRecords(50)
	recs[10].Grade = 1000                         // vigil.grade is a byte
	recs[20].TraceID = strings.Repeat("f", 40000) // longer than Lucene's 32766-byte term limit
	err := s.Write(ctx, recs)
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Write: got %v; want a *storage.RejectedError", err)
	}
	rejected := rej.Items
	if len(rejected) != 2 || rejected[0].Index != 10 || rejected[1].Index != 20 {
		t.Fatalf("rejected %+v, want records 10 and 20", rejected)
	}
	if !strings.Contains(rejected[0].Reason, "out of range for a byte") {
		t.Errorf("reason for record 10: %s", rejected[0].Reason)
	}
	if !strings.Contains(rejected[1].Reason, "immense term") {
		t.Errorf("reason for record 20: %s", rejected[1].Reason)
	}
	if n := len(rejected[1].Reason); n > 2000 {
		t.Errorf("reason for record 20 is %d bytes; Elasticsearch quotes the value, which must be cut", n)
	}
	if !strings.Contains(err.Error(), "out of range for a byte") {
		t.Errorf("Write's error %q does not name the reason", err)
	}
	s.Refresh(ctx)
	if n, err := s.Count(ctx, math.MinInt64, math.MaxInt64, nil); n != 48 || err != nil {
		t.Errorf("Count = %d, %v; want the other 48 records", n, err)
	}

	// Written again (a retry after the dead-letter destination failed),
	// the batch stores nothing twice and reports the same two records.
	err = s.Write(ctx, recs)
	if !errors.As(err, &rej) || len(rej.Items) != 2 || rej.Items[0].Index != 10 || rej.Items[1].Index != 20 {
		t.Errorf("Write again: got %v; want records 10 and 20 refused again", err)
	}
	s.Refresh(ctx)
	if n, err := s.Count(ctx, math.MinInt64, math.MaxInt64, nil); n != 48 || err != nil {
		t.Errorf("Count after writing again = %d, %v; want still 48", n, err)
	}
}

func TestESRetention(t *testing.T) {
	s := openES(t, func(o *Options) { o.Retention = 72 * time.Hour })
	ctx := context.Background()
	now := time.Now()
	recs := genRecords(4)
	recs[0].Timestamp = now.Add(-10 * 24 * time.Hour).UnixNano()
	recs[1].Timestamp = now.Add(-5 * 24 * time.Hour).UnixNano()
	recs[2].Timestamp = now.Add(-24 * time.Hour).UnixNano()
	recs[3].Timestamp = now.UnixNano()
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	before := catIndices(t, s)
	if len(before) != 4 {
		t.Fatalf("indices %v, want 4", before)
	}
	deleted, err := s.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := before[:2]; fmt.Sprint(deleted) != fmt.Sprint(want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if after := catIndices(t, s); fmt.Sprint(after) != fmt.Sprint(before[2:]) {
		t.Errorf("indices left %v, want %v", after, before[2:])
	}
	if s.ILM() {
		return // Run leaves retention to ILM
	}
	// Run applies retention at once, then waits for its context
	recs[0].ID[0]++
	if err := s.Write(ctx, recs[:1]); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(catIndices(t, s)) != 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if after := catIndices(t, s); fmt.Sprint(after) != fmt.Sprint(before[2:]) {
		t.Errorf("after Run: indices %v, want %v", after, before[2:])
	}
}
