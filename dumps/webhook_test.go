package dumps

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func change(kind storage.IssueChangeKind, id string) storage.IssueChange {
	ts := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixNano()
	return storage.IssueChange{Kind: kind,
		Issue: model.Issue{ID: id, Service: "checkout", Project: "42", Title: "runtime.Error: boom", Culprit: "main.handler",
			Level: "fatal", Status: model.IssueUnresolved, Count: 3, FirstSeen: ts, LastSeen: ts},
		Event: model.Dump{EventID: "e1", Timestamp: ts, Release: "v2", Environment: "prod", ServerName: "h1"}}
}

// TestWebhook: a notification is retried through 5xx answers until
// accepted, one refused with a 4xx is not retried, and the posted JSON is
// Slack's text plus the structured fields.
func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []WebhookPayload
	attempts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p WebhookPayload
		if err := json.Unmarshal(b, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %s (%v), content type %q", b, err, r.Header.Get("Content-Type"))
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[p.Issue.ID]++
		switch {
		case p.Issue.ID == "bad":
			w.WriteHeader(http.StatusBadRequest)
		case attempts[p.Issue.ID] < 3:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			got = append(got, p)
		}
	}))
	defer srv.Close()
	o := DefaultWebhookOptions(srv.URL)
	o.IssueURL = "http://vigil:16686/issues/"
	w := NewWebhook(o)
	w.backoff = backoff.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	w.Notify("default", []storage.IssueChange{change(storage.IssueCreated, "bad"), change(storage.IssueRegressed, "7")})
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(w.sent) < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if attempts["bad"] != 1 || attempts["7"] != 3 {
		t.Errorf("attempts %v; want 1 for the refused one, 3 for the one answered 503 twice", attempts)
	}
	if len(got) != 1 {
		t.Fatalf("delivered %d notifications; want 1", len(got))
	}
	want := "Regression in checkout (prod): runtime.Error: boom in main.handler, release v2 <http://vigil:16686/issues/7|issue 7>"
	if p := got[0]; p.Text != want || p.Kind != "regression" || p.Issue.Count != 3 || p.Issue.FirstSeen != "2026-03-02T10:00:00Z" || p.Event.EventID != "e1" {
		t.Errorf("payload %+v; want text %q and the issue's fields", p, want)
	}
	if testutil.ToFloat64(w.gaveUp) != 1 || testutil.ToFloat64(w.failedAttempts) != 3 {
		t.Errorf("given up %v, failed attempts %v; want 1, 3", testutil.ToFloat64(w.gaveUp), testutil.ToFloat64(w.failedAttempts))
	}
}

func TestWebhookQueueBounded(t *testing.T) {
	o := DefaultWebhookOptions("http://127.0.0.1:1/")
	o.QueueSize = 2
	w := NewWebhook(o)
	w.Notify("default", []storage.IssueChange{change(storage.IssueCreated, "1"), change(storage.IssueCreated, "2"), change(storage.IssueCreated, "3")})
	if got := testutil.ToFloat64(w.dropped); got != 1 {
		t.Errorf("dropped %v; want 1 beyond a queue of 2", got)
	}
}

// TestWebhookPerTenant: a tenant with a URL of its own gets its issues
// there, tagged with the tenant; the others go to the operator's URL; a
// tenant's URL that hangs delays none of the other notifications.
func TestWebhookPerTenant(t *testing.T) {
	type sink struct {
		mu  sync.Mutex
		got []WebhookPayload
	}
	serve := func(s *sink, hang chan struct{}) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p WebhookPayload
			if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
				t.Error(err)
			}
			if hang != nil {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}
			s.mu.Lock()
			s.got = append(s.got, p)
			s.mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	hang := make(chan struct{})
	var operator, teamA, teamB sink
	opSrv, aSrv, bSrv := serve(&operator, nil), serve(&teamA, nil), serve(&teamB, hang)
	o := DefaultWebhookOptions(opSrv.URL)
	o.URLFor = func(tenant string) string {
		return map[string]string{"team-a": aSrv.URL, "team-b": bSrv.URL}[tenant]
	}
	w := NewWebhook(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	w.Notify("team-b", []storage.IssueChange{change(storage.IssueCreated, "b1")}) // hangs until the end
	w.Notify("team-a", []storage.IssueChange{change(storage.IssueCreated, "a1")})
	w.Notify("default", []storage.IssueChange{change(storage.IssueCreated, "d1")})
	w.Notify("team-c", []storage.IssueChange{change(storage.IssueCreated, "c1")})
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(w.sent) < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(hang)
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(w.sent) < 4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	ids := func(s *sink) []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []string
		for _, p := range s.got {
			out = append(out, p.Tenant+"/"+p.Issue.ID)
		}
		slices.Sort(out)
		return out
	}
	if got, want := ids(&teamA), []string{"team-a/a1"}; !slices.Equal(got, want) {
		t.Errorf("team-a's webhook got %v; want %v", got, want)
	}
	if got, want := ids(&teamB), []string{"team-b/b1"}; !slices.Equal(got, want) {
		t.Errorf("team-b's webhook got %v; want %v", got, want)
	}
	if got, want := ids(&operator), []string{"/d1", "team-c/c1"}; !slices.Equal(got, want) {
		t.Errorf("the operator's webhook got %v; want the default tenant's and team-c's %v", got, want)
	}
	teamA.mu.Lock()
	defer teamA.mu.Unlock()
	if len(teamA.got) == 0 || !strings.HasPrefix(teamA.got[0].Text, "[team-a] New issue in checkout") {
		t.Errorf("team-a's messages %+v; want one whose text names the tenant", teamA.got)
	}
}

// TestWebhookIdleURLEnds: a URL's delivery goroutine ends once idle and
// drops its queue; the next notification to it starts another.
func TestWebhookIdleURLEnds(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	defer srv.Close()
	w := NewWebhook(DefaultWebhookOptions(srv.URL))
	w.idle = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	queues := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.queues)
	}
	for i := range 2 {
		w.Notify("default", []storage.IssueChange{change(storage.IssueCreated, "1")})
		for deadline := time.Now().Add(30 * time.Second); (got.Load() <= int32(i) || queues() != 0) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if got.Load() != int32(i+1) || queues() != 0 {
			t.Fatalf("notification %d: delivered %d, queues left %d; want %d delivered and the idle queue gone", i, got.Load(), queues(), i+1)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
