package dump_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// receiver is a minimal Sentry envelope intake: it checks the request
// line and headers, decodes the envelope and keeps the events.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	status int // answer when not 200; 0 means 200
	header http.Header
	events map[string]map[string]any // by event id
	posts  int
	errs   []string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, events: map[string]map[string]any{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// dsn is the receiver's DSN for project 42.
func (rc *receiver) dsn() string {
	return strings.Replace(rc.srv.URL, "http://", "http://public@", 1) + "/42"
}

func (rc *receiver) fail(status int, h http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status, rc.header = status, h
}

func (rc *receiver) snapshot() (events map[string]map[string]any, posts int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.errs) > 0 {
		rc.t.Errorf("receiver: bad requests: %s", strings.Join(rc.errs, "; "))
	}
	out := make(map[string]map[string]any, len(rc.events))
	for k, v := range rc.events {
		out[k] = v
	}
	return out, rc.posts
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if rc.status != 0 {
		for k, v := range rc.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rc.status)
		return
	}
	ev, err := decodeEnvelopeRequest(r)
	if err != nil {
		rc.errs = append(rc.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.events[ev["event_id"].(string)] = ev
	fmt.Fprintf(w, `{"id":%q}`, ev["event_id"])
}

// decodeEnvelopeRequest checks a request as Sentry's intake would and
// returns its one event.
func decodeEnvelopeRequest(r *http.Request) (map[string]any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/42/envelope/" {
		return nil, fmt.Errorf("%s %s: want POST /api/42/envelope/", r.Method, r.URL.Path)
	}
	auth := r.Header.Get("X-Sentry-Auth")
	if !strings.HasPrefix(auth, "Sentry ") || !strings.Contains(auth, "sentry_key=public") ||
		!strings.Contains(auth, "sentry_version=7") || !strings.Contains(auth, "sentry_client=vigil-go/") {
		return nil, fmt.Errorf("X-Sentry-Auth %q", auth)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-sentry-envelope" {
		return nil, fmt.Errorf("Content-Type %q", ct)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return parseEnvelope(raw)
}

// parseEnvelope decodes an envelope holding one event item.
func parseEnvelope(raw []byte) (map[string]any, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	hdrLine, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var hdr struct {
		EventID string `json:"event_id"`
		DSN     string `json:"dsn"`
	}
	if err := json.Unmarshal(hdrLine, &hdr); err != nil {
		return nil, fmt.Errorf("envelope header %q: %w", hdrLine, err)
	}
	itemLine, err := br.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("item header: %w", err)
	}
	var item struct {
		Type   string `json:"type"`
		Length *int   `json:"length"`
	}
	if err := json.Unmarshal(itemLine, &item); err != nil || item.Type != "event" || item.Length == nil {
		return nil, fmt.Errorf("item header %q: want type event with a length (%v)", itemLine, err)
	}
	payload := make([]byte, *item.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, fmt.Errorf("payload of %d bytes: %w", *item.Length, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "\n" {
		return nil, fmt.Errorf("after the payload: %q, want one newline", rest)
	}
	var ev map[string]any
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if ev["event_id"] != hdr.EventID || len(hdr.EventID) != 32 {
		return nil, fmt.Errorf("event_id %v, envelope header %q", ev["event_id"], hdr.EventID)
	}
	if _, err := strconv.ParseUint(hdr.EventID[:16], 16, 64); err != nil {
		return nil, fmt.Errorf("event_id %q is not hex", hdr.EventID)
	}
	return ev, nil
}

// path digs into decoded JSON: path(ev, "exception", "values", 0, "type").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) || k < -len(a) {
				return nil
			}
			if k < 0 {
				k += len(a)
			}
			v = a[k]
		}
	}
	return v
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
