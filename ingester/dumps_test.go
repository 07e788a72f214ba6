package ingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/dumpstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// byType groups events by their exception type, the issue id its length.
type byType struct{}

func (byType) Group(d *model.Dump) (string, string, string) {
	t := d.Exceptions[0].Type
	return fmt.Sprint(len(t)), t, "main.f"
}

// flakyDumps fails its first failures writes, after storing the first
// half of the batch, as a store that times out mid-write.
type flakyDumps struct {
	*dumpstore.Store
	mu       sync.Mutex
	failures int
}

func (s *flakyDumps) WriteDumps(ctx context.Context, b []storage.GroupedDump) ([]storage.IssueChange, error) {
	s.mu.Lock()
	fail := s.failures > 0
	s.failures--
	s.mu.Unlock()
	if fail {
		if _, err := s.Store.WriteDumps(ctx, b[:len(b)/2]); err != nil {
			return nil, err
		}
		return nil, errors.New("store unavailable")
	}
	return s.Store.WriteDumps(ctx, b)
}

type changeLog struct {
	mu  sync.Mutex
	got []string
}

// Notify keeps kind:issue, prefixed with tenant: for a tenant other than
// the default one.
func (c *changeLog) Notify(tenant string, ch []storage.IssueChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := ""
	if tenant != auth.DefaultTenant {
		prefix = tenant + ":"
	}
	for _, x := range ch {
		c.got = append(c.got, prefix+string(x.Kind)+":"+x.Issue.ID)
	}
}

// TestDumpIngester runs dump events over a disk queue into the embedded
// dump store: events are grouped and counted once although the store
// fails mid-batch, a record that is not an event is dead-lettered, the
// notifier hears of each new issue once, and everything is committed.
func TestDumpIngester(t *testing.T) {
	var recs [][]byte
	for i := 0; i < 60; i++ {
		typ := []string{"runtime.Error", "KeyError"}[i%2]
		b, _ := json.Marshal(model.Dump{EventID: fmt.Sprintf("%032x", i), Project: "42", Service: "checkout", Timestamp: int64(i + 1),
			Exceptions: []model.Exception{{Type: typ, Value: "x"}}})
		recs = append(recs, b)
		if i == 30 {
			recs = append(recs, []byte(`{"event_id": 7}`), []byte(`{"project": "42", "timestamp": 1}`), []byte(`not json`))
		}
	}
	// A retried record: the same event again.
	b, _ := json.Marshal(model.Dump{EventID: fmt.Sprintf("%032x", 3), Project: "42", Timestamp: 4, Exceptions: []model.Exception{{Type: "KeyError"}}})
	recs = append(recs, b)
	q, opts := queueWith(t, recs[0])
	for _, r := range recs[1:] {
		if err := q.Publish(context.Background(), "42", r); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	dlq, err := NewFileDeadLetter(filepath.Join(dir, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := dumpstore.Open(dumpstore.DefaultOptions(filepath.Join(dir, "dumps")))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	store := &flakyDumps{Store: ds, failures: 2}
	o := DefaultOptions()
	o.MaxBatchWait = 10 * time.Millisecond
	o.MaxBatchRecords = 16
	notes := &changeLog{}
	in := NewDumpIngester(o, q, store, byType{}, notes, dlq)
	count := func(id string) int64 {
		is, err := ds.GetIssue(context.Background(), id)
		if err != nil {
			return 0
		}
		return is.Count
	}
	runFor(t, in, func() bool { return count("13")+count("8") == 60 && testutil.ToFloat64(in.m.dead) == 3 })
	if a, b := count("13"), count("8"); a != 30 || b != 30 {
		t.Errorf("issue counts %d and %d; want 30 each", a, b)
	}
	// The first write stored half its batch and failed: the retry reports
	// the new issues its events opened.
	if got := strings.Join(notes.got, " "); got != "new:13 new:8" {
		t.Errorf("notified %q; want each new issue", got)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dlq", "deadletter.jsonl"))
	if err != nil || strings.Count(string(data), "\n") != 3 || !strings.Contains(string(data), `field \"event_id\": missing`) {
		t.Errorf("dead-letter file: %s, %v; want the three bad records with their reasons", data, err)
	}
	checkCommitted(t, q, opts)
}

func TestDecodeDump(t *testing.T) {
	f := func(in, wantErr string) {
		t.Helper()
		_, err := DecodeDump([]byte(in))
		if got := fmt.Sprint(err); !strings.Contains(got, wantErr) {
			t.Errorf("DecodeDump(%s) = %v; want an error containing %q", in, got, wantErr)
		}
	}
	f(`{"event_id":"a","project":"1","timestamp":1}`, "<nil>")
	f(`{"event_id":"a","service":"s","received":1}`, "<nil>")
	f(`[]`, "not a dump event")
	f(`{"project":"1","timestamp":1}`, `"event_id": missing`)
	f(`{"event_id":"a/b","project":"1","timestamp":1}`, `is not an event id`)
	f(`{"event_id":"a","timestamp":1}`, `both missing`)
	f(`{"event_id":"a","project":"1"}`, `"timestamp" and "received": both missing`)
}

// FuzzDecodeDump feeds arbitrary queue records to the dump decoder: it
// must fail cleanly, and what it accepts must have what grouping and the
// stores need.
func FuzzDecodeDump(f *testing.F) {
	f.Add([]byte(`{"event_id":"a","project":"1","timestamp":1,"exceptions":[{"type":"E","frames":[{"in_app":true}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDump(b)
		if err != nil {
			return
		}
		if d.EventID == "" || len(d.EventID) > MaxEventIDBytes || d.Service == "" || d.Timestamp <= 0 || d.IssueID != "" {
			t.Fatalf("DecodeDump(%q) accepted %+v", b, d)
		}
	})
}

// BenchmarkDumpIngester is the dump path from the disk queue to the
// embedded dump store: decode, group (a stand-in grouper), write with
// fsync, commit. b.N events of 20 issues, 4 KiB each.
func BenchmarkDumpIngester(b *testing.B) {
	pad := strings.Repeat("x", 4000)
	var recs [][]byte
	for i := 0; i < b.N; i++ {
		v, _ := json.Marshal(model.Dump{EventID: fmt.Sprintf("%032x", i), Project: "42", Service: "checkout", Timestamp: int64(i + 1),
			Message: pad, Exceptions: []model.Exception{{Type: fmt.Sprint("E", i%20), Value: "x"}}})
		recs = append(recs, v)
	}
	q, _ := queueWith(b, recs[0])
	defer q.Close()
	for _, r := range recs[1:] {
		if err := q.Publish(context.Background(), "42", r); err != nil {
			b.Fatal(err)
		}
	}
	ds, err := dumpstore.Open(dumpstore.DefaultOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	o := DefaultOptions()
	o.MaxBatchRecords = DefaultMaxBatchDumps
	in := NewDumpIngester(o, q, ds, byType{}, nil, nil)
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	for testutil.ToFloat64(in.m.written) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
