package esstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
)

// fakeES answers the requests Open makes and hands bulk requests to bulk,
// which gets the ids of the documents in the request.
type fakeES struct {
	mu       sync.Mutex
	requests [][]string // ids of each bulk request
	bulk     func(n int, ids []string, body []byte) (int, string)
	ilm      bool              // answer GET _ilm/policy with 200
	puts     map[string]string // bodies of PUT requests by path
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/_cluster/health":
		fmt.Fprint(w, `{"status":"green"}`)
	case r.URL.Path == "/_ilm/policy" && f.ilm:
		fmt.Fprint(w, `{}`)
	case r.URL.Path == "/_ilm/policy":
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, `{"error":"Incorrect HTTP method","status":405}`)
	case r.Method == http.MethodPut:
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		f.mu.Lock()
		if f.puts == nil {
			f.puts = map[string]string{}
		}
		f.puts[r.URL.Path] = body.String()
		f.mu.Unlock()
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.URL.Path == "/_bulk":
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(body.Bytes()))
		sc.Buffer(nil, 1<<20)
		for i := 0; sc.Scan(); i++ {
			if i%2 == 0 {
				var a struct {
					Create struct {
						ID string `json:"_id"`
					}
				}
				json.Unmarshal(sc.Bytes(), &a)
				ids = append(ids, a.Create.ID)
			}
		}
		f.mu.Lock()
		f.requests = append(f.requests, ids)
		n := len(f.requests)
		f.mu.Unlock()
		status, resp := f.bulk(n, ids, body.Bytes())
		w.WriteHeader(status)
		fmt.Fprint(w, resp)
	default:
		http.NotFound(w, r)
	}
}

func items(statuses ...int) string {
	var b strings.Builder
	b.WriteString(`{"errors":true,"items":[`)
	for i, s := range statuses {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case s == 400:
			fmt.Fprintf(&b, `{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [vigil.grade]","caused_by":{"type":"illegal_argument_exception","reason":"Value [1000] is out of range for a byte"}}}}`)
		case s >= 300:
			fmt.Fprintf(&b, `{"create":{"status":%d,"error":{"type":"some_exception","reason":"status %d"}}}`, s, s)
		default:
			fmt.Fprintf(&b, `{"create":{"status":%d}}`, s)
		}
	}
	b.WriteString("]}")
	return b.String()
}

func openFake(t *testing.T, f *fakeES, mod func(*Options)) *Store {
	t.Helper()
	s, _ := openFakeServer(t, f, mod)
	return s
}

func openFakeServer(t *testing.T, f *fakeES, mod func(*Options)) (*Store, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	o := DefaultOptions()
	o.URLs = []string{srv.URL}
	o.RetryBase, o.RetryMax, o.MaxAttempts = time.Millisecond, 5*time.Millisecond, 4
	o.Logger = slog.New(slog.DiscardHandler)
	if mod != nil {
		mod(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, srv
}

func fakeRecords(n int) []model.LogRecord {
	recs := make([]model.LogRecord, n)
	for i := range recs {
		recs[i] = model.LogRecord{Timestamp: 1709900000e9 + int64(i), Service: "api", Message: fmt.Sprintf("line %d", i)}
		recs[i].ID[15] = byte(i + 1)
	}
	return recs
}

func TestWriteRetriesOnlyFailedItems(t *testing.T) {
	f := &fakeES{bulk: func(n int, ids []string, _ []byte) (int, string) {
		if n == 1 {
			return 200, items(201, 429, 400, 409, 503)
		}
		st := make([]int, len(ids))
		for i := range st {
			st[i] = 201
		}
		return 200, items(st...)
	}}
	var rejected []string
	s := openFake(t, f, func(o *Options) {
		o.Rejected = func(_ context.Context, rec model.LogRecord, reason string) error {
			rejected = append(rejected, rec.ID.String()+" "+reason)
			return nil
		}
	})
	recs := fakeRecords(5)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(f.requests) != 2 {
		t.Fatalf("got %d bulk requests, want 2", len(f.requests))
	}
	if got, want := strings.Join(f.requests[1], ","), recs[1].ID.String()+","+recs[4].ID.String(); got != want {
		t.Errorf("second request: got ids %s, want %s (only the 429 and 503 items)", got, want)
	}
	if len(rejected) != 1 || !strings.HasPrefix(rejected[0], recs[2].ID.String()+" document_parsing_exception") ||
		!strings.Contains(rejected[0], "out of range for a byte") {
		t.Errorf("rejected: got %q, want record 2 with Elasticsearch's reason", rejected)
	}
}

func TestWriteFailsAfterRetries(t *testing.T) {
	f := &fakeES{bulk: func(int, []string, []byte) (int, string) {
		return 503, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered]"},"status":503}`
	}}
	s := openFake(t, f, nil)
	err := s.Write(context.Background(), fakeRecords(3))
	if err == nil || !strings.Contains(err.Error(), "state not recovered") {
		t.Fatalf("Write: got %v, want an error with the reason", err)
	}
	if len(f.requests) != 4 {
		t.Errorf("got %d attempts, want MaxAttempts = 4", len(f.requests))
	}
}

func TestWriteConnectionRefused(t *testing.T) {
	s, srv := openFakeServer(t, &fakeES{}, nil)
	srv.Close()
	err := s.Write(context.Background(), fakeRecords(3))
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("Write with Elasticsearch gone: got %v, want an error after MaxAttempts", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, fakeRecords(3)); err == nil {
		t.Fatal("Write with a cancelled context: got nil")
	}
}

func TestWriteRejectedWithoutHandler(t *testing.T) {
	f := &fakeES{bulk: func(int, []string, []byte) (int, string) { return 200, items(201, 400) }}
	s := openFake(t, f, nil)
	err := s.Write(context.Background(), fakeRecords(2))
	if err == nil || !strings.Contains(err.Error(), "out of range for a byte") {
		t.Fatalf("Write: got %v, want the rejection as an error", err)
	}
}

func TestWriteSplitsOn413(t *testing.T) {
	f := &fakeES{bulk: func(_ int, ids []string, body []byte) (int, string) {
		if bytes.Contains(body, []byte("HUGE")) {
			return 413, ""
		}
		st := make([]int, len(ids))
		for i := range st {
			st[i] = 201
		}
		return 200, items(st...)
	}}
	var rejected []model.RecordID
	s := openFake(t, f, func(o *Options) {
		o.Rejected = func(_ context.Context, rec model.LogRecord, _ string) error {
			rejected = append(rejected, rec.ID)
			return nil
		}
	})
	recs := fakeRecords(8)
	recs[5].Message = "HUGE"
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(rejected) != 1 || rejected[0] != recs[5].ID {
		t.Errorf("rejected %v, want only record 5", rejected)
	}
	indexed := 0
	for _, r := range f.requests {
		if len(r) > 0 && !strings.Contains(strings.Join(r, ","), recs[5].ID.String()) {
			indexed += len(r)
		}
	}
	if indexed != 7 {
		t.Errorf("%d records indexed, want 7", indexed)
	}
}

func TestOpenWithILM(t *testing.T) {
	f := &fakeES{ilm: true}
	s := openFake(t, f, func(o *Options) { o.Retention = 48 * time.Hour })
	if !s.ILM() {
		t.Fatal("ILM not detected")
	}
	policy := f.puts["/_ilm/policy/vigil-logs"]
	if !strings.Contains(policy, `"delete":{"actions":{"delete":{}},"min_age":"259200s"}`) {
		t.Errorf("ILM policy %s: want delete at retention + 1 day", policy)
	}
	if tpl := f.puts["/_index_template/vigil-logs"]; !strings.Contains(tpl, `"index.lifecycle.name":"vigil-logs"`) {
		t.Errorf("template %s: want the ILM policy in its settings", tpl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}

	// without ILM, neither the policy nor the setting
	f2 := &fakeES{}
	openFake(t, f2, func(o *Options) { o.Retention = 48 * time.Hour })
	if _, ok := f2.puts["/_ilm/policy/vigil-logs"]; ok || strings.Contains(f2.puts["/_index_template/vigil-logs"], "lifecycle") {
		t.Errorf("ILM used on a cluster without it: %v", f2.puts)
	}
}
