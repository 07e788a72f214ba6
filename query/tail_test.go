package query

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigilhq/vigil/internal/logstore"
	"github.com/vigilhq/vigil/internal/model"
)

// tailEnv is a Loki API over an empty embedded store, with its daemon
// context, for tail tests.
type tailEnv struct {
	srv     *httptest.Server
	store   readWriter
	stop    context.CancelFunc
	stopped chan struct{}
	nextID  int
}

func newTailEnv(t *testing.T, mod func(*Options)) *tailEnv {
	t.Helper()
	s, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newTailEnvOver(t, s, mod)
}

func newTailEnvOver(t *testing.T, s readWriter, mod func(*Options)) *tailEnv {
	t.Helper()
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	o.Tail.PollInterval = 20 * time.Millisecond
	if mod != nil {
		mod(&o)
	}
	api := NewAPI(o, s)
	mux := http.NewServeMux()
	api.RegisterHTTP(mux)
	env := &tailEnv{srv: httptest.NewServer(mux), store: s, stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	env.stop = cancel
	go func() { api.Run(ctx); close(env.stopped) }()
	t.Cleanup(func() { cancel(); <-env.stopped; env.srv.Close() })
	return env
}

// write stores one line per message, at now plus one microsecond each.
func (e *tailEnv) write(t *testing.T, service string, msgs ...string) {
	t.Helper()
	e.writeAt(t, time.Now(), service, msgs...)
}

// writeAt stores one line per message, at ts plus one microsecond each.
func (e *tailEnv) writeAt(t *testing.T, ts time.Time, service string, msgs ...string) {
	t.Helper()
	var recs []model.LogRecord
	now := ts.UnixNano()
	for i, m := range msgs {
		e.nextID++
		recs = append(recs, model.LogRecord{ID: model.RecordID{byte(e.nextID), byte(e.nextID >> 8), 9},
			Timestamp: now + int64(i)*1000, ObservedTimestamp: now, Service: service, Level: "info", Host: "h1", Message: m})
	}
	if err := e.store.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if r, ok := e.store.(interface{ Refresh(context.Context) error }); ok {
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *tailEnv) dial(t *testing.T, params ...string) *websocket.Conn {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	c, _, err := websocket.Dial(testContext(t), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/loki/api/v1/tail?"+v.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// testContext returns a context that ends with the test, or after 30 s.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readTail reads n lines from c, each as "labels|line".
// Its reads share one context that lives as long as the test (coder/websocket
// closes a connection whose read or write context ends).
func readTail(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	ctx := testContext(t)
	var got []string
	for len(got) < n {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading tail after %q: %v", got, err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("got a %v message; want text", typ)
		}
		var msg struct {
			Streams []struct {
				Stream map[string]string `json:"stream"`
				Values [][2]string       `json:"values"`
			} `json:"streams"`
			Dropped *json.RawMessage `json:"dropped_entries"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatalf("message %s: %v", b, err)
		}
		if len(msg.Streams) == 0 || msg.Dropped != nil {
			t.Fatalf("message %s: want streams and no dropped_entries", b)
		}
		for _, s := range msg.Streams {
			for _, v := range s.Values {
				got = append(got, model.LabelsFromMap(s.Stream).String()+"|"+v[1])
			}
		}
	}
	return got
}

func TestTailSendsNewLinesInOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s readWriter) { testTailSendsNewLinesInOrder(t, newTailEnvOver(t, s, nil)) })
}

func testTailSendsNewLinesInOrder(t *testing.T, env *tailEnv) {
	env.write(t, "api", "old 1 x", "old 2 x", "old 3 x")
	c := env.dial(t, "query", `{service="api"} |= "x"`, "limit", "2")
	api := `{detected_level="info", host="h1", level="info", service="api", service_name="api"}`
	if got, want := readTail(t, c, 2), []string{api + "|old 2 x", api + "|old 3 x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first lines: got %q; want %q (the newest limit lines since start)", got, want)
	}
	env.write(t, "api", "new 1 x", "new 2 skipped", "new 3 x")
	env.write(t, "db", "other service x")
	env.write(t, "api", "new 4 x")
	want := []string{api + "|new 1 x", api + "|new 3 x", api + "|new 4 x"}
	if got := readTail(t, c, 3); !reflect.DeepEqual(got, want) {
		t.Fatalf("live lines: got %q; want %q", got, want)
	}
}

// TestTailSendsLateLines writes lines stamped before the polls that
// could have seen them, as a pipeline or a slow shipper delivers them:
// those within the lookback come, once each; older ones do not.
func TestTailSendsLateLines(t *testing.T) {
	eachStore(t, func(t *testing.T, s readWriter) {
		env := newTailEnvOver(t, s, func(o *Options) { o.Tail.Lookback = 3 * time.Second })
		c := env.dial(t, "query", `{service="api"}`)
		env.write(t, "api", "first")
		api := `{detected_level="info", host="h1", level="info", service="api", service_name="api"}`
		if got := readTail(t, c, 1); !reflect.DeepEqual(got, []string{api + "|first"}) {
			t.Fatalf("got %q; want the first line", got)
		}
		time.Sleep(100 * time.Millisecond) // several polls past the lines below
		env.writeAt(t, time.Now().Add(-time.Minute), "api", "too late")
		env.writeAt(t, time.Now().Add(-time.Second), "api", "late")
		env.write(t, "api", "last")
		want := []string{api + "|late", api + "|last"}
		if got := readTail(t, c, 2); !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q; want %q: the late line within the lookback, nothing sent twice, not the line older than it", got, want)
		}
	})
}

func TestTailClosesWhenServerStops(t *testing.T) {
	env := newTailEnv(t, nil)
	env.write(t, "api", "hello")
	c := env.dial(t, "query", `{service="api"}`)
	readTail(t, c, 1)
	env.stop()
	ctx := testContext(t)
	_, _, err := c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("after server stop: read error %v (status %v); want a close with status going away", err, got)
	}
	select {
	case <-env.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	// A tail opened after the stop is refused the same way.
	c2 := env.dial(t, "query", `{service="api"}`)
	if _, _, err := c2.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("tail after stop: got %v; want a close with status going away", err)
	}
}

func TestTailConcurrencyLimit(t *testing.T) {
	env := newTailEnv(t, func(o *Options) { o.Tail.MaxConcurrent = 1 })
	env.write(t, "api", "hello")
	c := env.dial(t, "query", `{service="api"}`)
	readTail(t, c, 1) // the first tail is open
	c2 := env.dial(t, "query", `{service="api"}`)
	ctx := testContext(t)
	_, _, err := c2.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusInternalError ||
		ce.Reason != "max concurrent tail requests limit exceeded, count > limit (2 > 1)" {
		t.Fatalf("second tail: got %v; want Loki's limit error in a close frame", err)
	}
	// Once the first tail goes, a new one is served.
	c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c3 := env.dial(t, "query", `{service="api"}`)
		_, _, err := c3.Read(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail after the first closed: %v", err)
		}
		c3.CloseNow()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTailBadRequest(t *testing.T) {
	env := newTailEnv(t, nil)
	f := func(want string, params ...string) {
		t.Helper()
		v := url.Values{}
		for i := 0; i+1 < len(params); i += 2 {
			v.Set(params[i], params[i+1])
		}
		resp, err := http.Get(env.srv.URL + "/loki/api/v1/tail?" + v.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), want) {
			t.Errorf("tail %v: got %d %q; want 400 containing %q", params, resp.StatusCode, b, want)
		}
	}
	f("query parameter is required")
	f("delay_for can't be greater than 5", "query", `{service="api"}`, "delay_for", "6")
	f(`invalid delay_for "x"`, "query", `{service="api"}`, "delay_for", "x")
	f("parse error", "query", `sum(rate({service="api"}[1m]))`)
	f("max entries limit per query exceeded", "query", `{service="api"}`, "limit", "100000")
}
