package es

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/es/estest"
)

func TestDailyIndicesDay(t *testing.T) {
	d := DailyIndices{Prefixes: []string{"p-span-", "p-service-"}, Layout: "2006-01-02"}
	f := func(name, want string) {
		t.Helper()
		day, ok := d.Day(name)
		got := ""
		if ok {
			got = day.Format(time.DateOnly)
		}
		if got != want {
			t.Errorf("Day(%q): got %q; want %q", name, got, want)
		}
	}
	f("p-span-2026-03-01", "2026-03-01")
	f("p-service-2026-03-01", "2026-03-01")
	f("p-span-2026-3-01", "")
	f("p-span-2026-02-30", "")
	f("p-span-2026-03-01-x", "")
	f("p-other-2026-03-01", "")
	f("q-span-2026-03-01", "")
	f("p-span-", "")
}

func TestRetentionOff(t *testing.T) {
	r := NewRetention(nil, DailyIndices{}, 0, nil, discard) // sends nothing: no client needed
	if deleted, err := r.DeleteExpired(context.Background(), time.Now()); deleted != nil || err != nil {
		t.Errorf("DeleteExpired without a retention: got %v, %v; want nothing", deleted, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run without a retention: %v", err)
	}
}

func testClient(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{URLs: []string{estest.URL(t)}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WaitForCluster(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestESDeleteExpiredDailyIndices(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	p := fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	t.Cleanup(func() { c.Do(context.Background(), http.MethodDelete, "/"+p+"*", nil, "") })
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var names []string
	for _, part := range []string{"span-", "service-"} {
		for _, day := range []int{1, 7, 8, 9, 10} {
			names = append(names, p+part+now.AddDate(0, 0, day-10).Format("2006.01.02"))
		}
	}
	names = append(names, p+"span-keep", p+"other-2026.03.01")
	for _, n := range names {
		if err := c.PutJSON(ctx, "/"+n, map[string]any{"settings": map[string]any{"number_of_replicas": 0}}); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	d := DailyIndices{Prefixes: []string{p + "span-", p + "service-"}, Layout: "2006.01.02"}
	deleted, err := c.DeleteExpiredDailyIndices(ctx, d, 48*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// a day is kept until all of it is older than the retention: the 8th
	// ends on the 9th at 00:00, which is less than 48h before now
	want := []string{p + "service-2026.03.01", p + "service-2026.03.07", p + "span-2026.03.01", p + "span-2026.03.07"}
	if !slices.Equal(deleted, want) {
		t.Errorf("deleted %v; want %v", deleted, want)
	}
	status, body, err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+p+"*?h=index&s=index", nil, "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("cat indices: %d %v %s", status, err, body)
	}
	left := strings.Fields(string(body))
	wantLeft := []string{p + "other-2026.03.01", p + "service-2026.03.08", p + "service-2026.03.09", p + "service-2026.03.10",
		p + "span-2026.03.08", p + "span-2026.03.09", p + "span-2026.03.10", p + "span-keep"}
	if !slices.Equal(left, wantLeft) {
		t.Errorf("indices left %v; want %v", left, wantLeft)
	}

	// nothing more to delete
	if deleted, err := c.DeleteExpiredDailyIndices(ctx, d, 48*time.Hour, now); err != nil || len(deleted) != 0 {
		t.Errorf("second DeleteExpiredDailyIndices: got %v, %v; want nothing", deleted, err)
	}
}

func TestESRetentionRun(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	p := fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	t.Cleanup(func() { c.Do(context.Background(), http.MethodDelete, "/"+p+"*", nil, "") })
	today := time.Now().UTC()
	old, cur := p+today.AddDate(0, 0, -5).Format("2006.01.02"), p+today.Format("2006.01.02")
	for _, n := range []string{old, cur} {
		if err := c.PutJSON(ctx, "/"+n, map[string]any{"settings": map[string]any{"number_of_replicas": 0}}); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	deleted := prometheus.NewCounter(prometheus.CounterOpts{Name: "deleted"})
	r := NewRetention(c, DailyIndices{Prefixes: []string{p}, Layout: "2006.01.02"}, 72*time.Hour, deleted, discard)

	// Run deletes at once, not after RetentionInterval, then waits for its context
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(deleted) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := testutil.ToFloat64(deleted); got != 1 {
		t.Errorf("deleted indices counted: got %v; want 1", got)
	}
	status, body, err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+p+"*?h=index", nil, "")
	if err != nil || status != http.StatusOK || strings.TrimSpace(string(body)) != cur {
		t.Errorf("indices left: %d %v %q; want only %s", status, err, body, cur)
	}
}

// TestESRetentionSetPeriod changes the period of a running store's
// retention, as a reload of a tenant's retention does: a shorter period
// deletes at once what is now past it; 0 deletes nothing.
func TestESRetentionSetPeriod(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	p := fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	t.Cleanup(func() { c.Do(context.Background(), http.MethodDelete, "/"+p+"*", nil, "") })
	today := time.Now().UTC()
	var names []string
	for _, back := range []int{10, 3, 0} {
		n := p + today.AddDate(0, 0, -back).Format("2006.01.02")
		names = append(names, n)
		if err := c.PutJSON(ctx, "/"+n, map[string]any{"settings": map[string]any{"number_of_replicas": 0}}); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	deleted := prometheus.NewCounter(prometheus.CounterOpts{Name: "deleted"})
	r := NewRetention(c, DailyIndices{Prefixes: []string{p}, Layout: "2006.01.02"}, 30*24*time.Hour, deleted, discard)
	left := func() []string {
		t.Helper()
		status, body, err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+p+"*?h=index&s=index", nil, "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("cat indices: %d %v %s", status, err, body)
		}
		return strings.Fields(string(body))
	}
	for _, step := range []struct {
		period time.Duration
		del    []string
		left   []string
	}{
		{0, nil, names},
		{7 * 24 * time.Hour, names[:1], names[1:]},
		{24 * time.Hour, names[1:2], names[2:]},
	} {
		got, err := r.SetPeriod(ctx, step.period)
		if err != nil || !slices.Equal(got, step.del) || r.Period() != step.period {
			t.Errorf("SetPeriod(%v): deleted %v, %v, period %v; want %v", step.period, got, err, r.Period(), step.del)
		}
		if l := left(); !slices.Equal(l, step.left) {
			t.Errorf("after SetPeriod(%v): indices %v; want %v", step.period, l, step.left)
		}
	}
	if got := testutil.ToFloat64(deleted); got != 2 {
		t.Errorf("deleted indices counted: got %v; want 2", got)
	}
}

func TestESClient(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	idx := fmt.Sprintf("vigiltest-%08x-doc", rand.Uint32())
	t.Cleanup(func() { c.Do(context.Background(), http.MethodDelete, "/"+idx, nil, "") })

	status, body, err := c.Do(ctx, http.MethodPost, "/"+idx+"/_doc/1", []byte(`{"a":1}`), "")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("index a document: %d %v %s", status, err, body)
	}
	if err := c.Refresh(ctx, idx); err != nil {
		t.Fatal(err)
	}
	status, body, err = c.Do(ctx, http.MethodGet, "/"+idx+"/_count", nil, "")
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"count":1`) {
		t.Errorf("count after Refresh: %d %v %s; want 1 document", status, err, body)
	}
	// an error status is an answer, not an error, and PutJSON reports it with Elasticsearch's reason
	status, _, err = c.Do(ctx, http.MethodGet, "/"+idx+"-missing/_count", nil, "")
	if err != nil || status != http.StatusNotFound {
		t.Errorf("count of a missing index: got %d, %v; want 404", status, err)
	}
	err = c.PutJSON(ctx, "/"+idx+"/_mapping", map[string]any{"properties": map[string]any{"a": map[string]any{"type": "no_such_type"}}})
	if err == nil || !strings.Contains(err.Error(), "status 400") || !strings.Contains(err.Error(), "no_such_type") {
		t.Errorf("PutJSON of a bad mapping: got %v; want status 400 with the reason", err)
	}
}

// TestESDeleteIndicesAlreadyGone: an index another deleter removed first
// (another ingester's retention) is left out of what was deleted, and the
// others are still deleted.
func TestESDeleteIndicesAlreadyGone(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	p := fmt.Sprintf("vigiltest-%08x-", rand.Uint32())
	t.Cleanup(func() { c.Do(context.Background(), http.MethodDelete, "/"+p+"*", nil, "") })
	for _, n := range []string{p + "a", p + "c"} {
		if err := c.PutJSON(ctx, "/"+n, map[string]any{"settings": map[string]any{"number_of_replicas": 0}}); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	got, err := c.deleteIndices(ctx, []string{p + "a", p + "b", p + "c"})
	if want := []string{p + "a", p + "c"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("deleteIndices with %sb already gone: %v, %v; want %v", p, got, err, want)
	}
	if got, err := c.deleteIndices(ctx, []string{p + "a"}); err != nil || len(got) != 0 {
		t.Errorf("deleteIndices of a deleted index: %v, %v; want nothing deleted", got, err)
	}
}
