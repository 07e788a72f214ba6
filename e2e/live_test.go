//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestLiveTailAndPatterns calls the two endpoints as Grafana does: Live
// opens /loki/api/v1/tail with a plain websocket dialer (no Origin) and
// reads lines pushed after it opened; the patterns tab asks for the
// patterns of a service, mined as the lines were written, and gets them
// again after a restart. Stopping the daemon closes the tail with "going
// away" and the daemon still exits cleanly.
func TestLiveTailAndPatterns(t *testing.T) {
	p := startAllInOne(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := url.Values{"query": {`{service="live"} |= "job"`}, "delay_for": {"0"}, "limit": {"10"}}
	c, _, err := websocket.Dial(ctx, "ws://"+p.query+"/loki/api/v1/tail?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	var body strings.Builder
	for _, m := range []string{"job 1 done in 3s", "health ok", "job 2 done in 5s", "job 3 done in 4s"} {
		body.WriteString(`{"service":"live","level":"info","message":"` + m + `"}` + "\n")
	}
	if code, resp := p.post("/api/v1/logs", "application/x-ndjson", []byte(body.String())); code != 200 {
		t.Fatalf("push: %d %s", code, resp)
	}
	var got []string
	for len(got) < 3 {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("tail after %q: %v", got, err)
		}
		var msg struct {
			Streams []struct {
				Stream map[string]string `json:"stream"`
				Values [][2]string       `json:"values"`
			} `json:"streams"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		for _, s := range msg.Streams {
			if s.Stream["service"] != "live" {
				t.Errorf("stream labels %v: want service=live", s.Stream)
			}
			for _, v := range s.Values {
				got = append(got, v[1])
			}
		}
	}
	if want := "job 1 done in 3s|job 2 done in 5s|job 3 done in 4s"; strings.Join(got, "|") != want {
		t.Fatalf("tail: got %q; want %q", got, want)
	}

	checkPatterns := func(when string) {
		t.Helper()
		resp, err := http.Get("http://" + p.query + "/loki/api/v1/patterns?" + url.Values{"query": {`{service="live"}`}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code := resp.StatusCode
		var pat struct {
			Status string `json:"status"`
			Data   []struct {
				Pattern string     `json:"pattern"`
				Samples [][2]int64 `json:"samples"`
			} `json:"data"`
		}
		if code != 200 || json.Unmarshal(raw, &pat) != nil || pat.Status != "success" || len(pat.Data) == 0 ||
			pat.Data[0].Pattern != "job <_> done in <_>" || len(pat.Data[0].Samples) != 1 || pat.Data[0].Samples[0][1] != 3 {
			t.Fatalf("patterns %s: %d %s; want first the pattern \"job <_> done in <_>\" with 3 lines in one sample", when, code, raw)
		}
		if n := metric(t, p.query, "vigil_query_patterns_answers_total", "source", "stored"); n != 1 {
			t.Fatalf("patterns %s: %v answers from patterns mined at ingest; want this one", when, n)
		}
	}
	checkPatterns("while mining")

	stopped := make(chan struct{})
	go func() { p.stop(); close(stopped) }()
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("tail while the daemon stops: got %v; want a close with status going away", err)
	}
	<-stopped

	// The patterns mined before the stop were written at close: the
	// restarted daemon answers from them, not by mining lines again.
	p.start()
	checkPatterns("after a restart")
}
