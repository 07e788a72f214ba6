// Package dumptest is a minimal Sentry envelope intake for tests of code
// that reports dumps: it checks each request as Sentry's intake would,
// decodes the envelope and keeps its event. It uses the standard library
// only, so the SDK's tests and the daemons' tests can both use it.
package dumptest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Project and Key are the project id and public key the Receiver accepts.
const (
	Project = "42"
	Key     = "public"
)

// Receiver is a Sentry envelope intake on a local port.
type Receiver struct {
	t    testing.TB
	addr string

	mu     sync.Mutex
	srv    *httptest.Server // nil while stopped
	status int              // answer when not 200; 0 means 200
	header http.Header
	events map[string]map[string]any // by event id
	posts  int
	errs   []string
}

// NewReceiver starts a Receiver; it stops at the end of the test.
func NewReceiver(t testing.TB) *Receiver {
	rc := &Receiver{t: t, events: map[string]map[string]any{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.addr = rc.srv.Listener.Addr().String()
	t.Cleanup(rc.Stop)
	return rc
}

// DSN is the Receiver's DSN: http://public@127.0.0.1:PORT/42.
func (rc *Receiver) DSN() string { return "http://" + Key + "@" + rc.addr + "/" + Project }

// Stop closes the Receiver's port, as an intake that is down: connections
// are refused until Start.
func (rc *Receiver) Stop() {
	rc.mu.Lock()
	srv := rc.srv
	rc.srv = nil
	rc.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Start listens again on the address Stop closed, keeping the events
// received so far.
func (rc *Receiver) Start() {
	rc.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", rc.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		rc.t.Fatalf("receiver: cannot listen on %s again: %v", rc.addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	_ = srv.Listener.Close() // replaced by ln below; it never accepted
	srv.Listener = ln
	srv.Start()
	rc.mu.Lock()
	rc.srv = srv
	rc.mu.Unlock()
}

// Fail makes the Receiver answer status, with the headers h, until called
// with 0.
func (rc *Receiver) Fail(status int, h http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status, rc.header = status, h
}

// Snapshot returns the events received, by event id, and how many
// requests came; a request the Receiver refused as malformed fails the
// test.
func (rc *Receiver) Snapshot() (events map[string]map[string]any, posts int) {
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

// WaitEvents waits up to timeout until at least n events arrived and
// returns them; it fails the test when they do not.
func (rc *Receiver) WaitEvents(n int, timeout time.Duration) map[string]map[string]any {
	rc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		events, _ := rc.Snapshot()
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("receiver: %d events after %v, want %d", len(events), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
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
	ev, err := DecodeEnvelopeRequest(r)
	if err != nil {
		rc.errs = append(rc.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.events[ev["event_id"].(string)] = ev
	fmt.Fprintf(w, `{"id":%q}`, ev["event_id"])
}

// DecodeEnvelopeRequest checks a request as Sentry's intake would —
// POST /api/42/envelope/, X-Sentry-Auth with key public, the envelope
// content type, gzip or not — and returns its one event.
func DecodeEnvelopeRequest(r *http.Request) (map[string]any, error) {
	if want := "/api/" + Project + "/envelope/"; r.Method != http.MethodPost || r.URL.Path != want {
		return nil, fmt.Errorf("%s %s: want POST %s", r.Method, r.URL.Path, want)
	}
	auth := r.Header.Get("X-Sentry-Auth")
	if !strings.HasPrefix(auth, "Sentry ") || !strings.Contains(auth, "sentry_key="+Key) ||
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
	return ParseEnvelope(raw)
}

// ParseEnvelope decodes an envelope holding one event item.
func ParseEnvelope(raw []byte) (map[string]any, error) {
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

// Path digs into decoded JSON: Path(ev, "exception", "values", -1,
// "type"); a negative index counts from the end. It returns nil where the
// path leads nowhere.
func Path(v any, keys ...any) any {
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

// LastInApp returns the function of the newest in-app frame of Sentry
// frames (oldest first), "" when none is.
func LastInApp(frames any) string {
	fs, _ := frames.([]any)
	for i := len(fs) - 1; i >= 0; i-- {
		if Path(fs[i], "in_app") == true {
			fn, _ := Path(fs[i], "function").(string)
			return fn
		}
	}
	return ""
}
