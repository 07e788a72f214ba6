package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// LogBuffer is syncBuffer for the tests of package sdk_test.
type LogBuffer = syncBuffer

// lines returns the JSON log lines written so far, but for the one Init
// writes when panic dumps are off.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		if l == "" || strings.Contains(l, msgDumpsOff) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// initTest initializes the SDK for one test, its logs in the returned
// buffer, and shuts it down at the end of the test.
func initTest(t testing.TB, cfg Config) *syncBuffer {
	t.Helper()
	var buf syncBuffer
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	if cfg.Grade == 0 {
		cfg.Grade = 2
	}
	if cfg.LogOutput == nil {
		cfg.LogOutput = &buf
	}
	cfg.NoGlobals = true
	shutdown, err := Init(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &buf
}

// sink is a stand-in collector that answers 200 to everything and keeps
// the bodies of the logs API requests but for the line Init writes when
// panic dumps are off.
type sink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	logs  []string // NDJSON lines
	code  int      // answer to the logs API; 200 when 0
	posts int      // POSTs to the logs API, answered or not
	// traceFails is how many exports of spans to answer 503 before
	// accepting them; tracePosts the Idempotency-Key of each export.
	traceFails int
	tracePosts []string
}

func newSink(t testing.TB) *sink {
	s := &sink{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.posts++
		if s.code != 0 {
			w.WriteHeader(s.code)
			return
		}
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			if !strings.Contains(l, msgDumpsOff) {
				s.logs = append(s.logs, l)
			}
		}
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tracePosts = append(s.tracePosts, r.Header.Get("Idempotency-Key"))
		if s.traceFails > 0 {
			s.traceFails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) shipped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logs...)
}
