package esdumpstore

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/es/estest"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/storage/dumptest"
)

var t0 = dumptest.T0

func TestShared(t *testing.T) {
	o := testOptions(t)
	n := 0
	dumptest.Run(t, func(t *testing.T) dumptest.Store {
		n++
		o := o
		o.IndexPrefix += fmt.Sprint("-", n)
		return openES(t, o)
	})
}

func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.URLs = []string{estest.URL(t)}
	o.IndexPrefix = fmt.Sprintf("vigiltest-%08x", rand.Uint32())
	o.Replicas = 0
	o.Retention = 0
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// openES opens a store with an index prefix of its own and deletes its
// indices and template when the test ends.
func openES(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		defer s.Close()
		for _, path := range []string{"/" + s.eventPattern() + "," + s.issueIndex(), "/_index_template/" + s.prefix + "vigil-dumps"} {
			s.c.Do(context.Background(), http.MethodDelete, path, nil, "")
		}
	})
	return s
}

// TestRetryAfterPartialWrite stops a write after each of its steps, as a
// crash or a timeout would, and checks that writing the batch again
// counts every event once.
func TestRetryAfterPartialWrite(t *testing.T) {
	s := openES(t, testOptions(t))
	ctx := context.Background()
	batch := func(from int) []storage.GroupedDump {
		var b []storage.GroupedDump
		for i := from; i < from+10; i++ {
			b = append(b, dumptest.Event(fmt.Sprintf("e%d", i), "7", t0.Add(time.Duration(i)*time.Second)))
		}
		return b
	}
	all := func(b []storage.GroupedDump) []int {
		idx := make([]int, len(b))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	// Stopped after creating the events.
	b := batch(0)
	if _, _, _, err := s.createEvents(ctx, b, all(b)); err != nil {
		t.Fatal(err)
	}
	dumptest.Write(t, s, b...)
	// Stopped after folding them, before marking them folded.
	b = batch(10)
	if _, _, _, err := s.createEvents(ctx, b, all(b)); err != nil {
		t.Fatal(err)
	}
	if err := s.fold(ctx, b, all(b)); err != nil {
		t.Fatal(err)
	}
	dumptest.Write(t, s, b...)
	// Stopped after marking them.
	b = batch(20)
	dumptest.Write(t, s, b...)
	dumptest.Write(t, s, b...)
	if is := dumptest.Issue(t, s, "7"); is.Count != 30 {
		t.Errorf("count %d; want 30 events, each once", is.Count)
	}
}

// TestTwoWriters writes the same events through two stores (two
// ingesters) at once, in different batches and orders, and some again.
func TestTwoWriters(t *testing.T) {
	o := testOptions(t)
	a, b := openES(t, o), openES(t, o)
	const events, issues = 400, 4
	evs := make([]storage.GroupedDump, events)
	for i := range evs {
		evs[i] = dumptest.Event(fmt.Sprintf("%032x", i), strconv.Itoa(i%issues), t0.Add(time.Duration(i)*time.Millisecond))
	}
	var wg sync.WaitGroup
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			perm := r.Perm(events)
			for start := 0; start < events; start += 25 {
				var batch []storage.GroupedDump
				for _, i := range perm[start:min(start+25, events)] {
					batch = append(batch, evs[i])
				}
				if _, err := s.WriteDumps(context.Background(), batch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for i := 0; i < issues; i++ {
		is := dumptest.Issue(t, a, strconv.Itoa(i))
		if is.Count != events/issues {
			t.Errorf("issue %d: count %d; want %d", i, is.Count, events/issues)
		}
		total += is.Count
	}
	if total != events {
		t.Errorf("total count %d; want %d", total, events)
	}
	t.Logf("version conflicts resolved: %v + %v; duplicates skipped: %v + %v", testutil.ToFloat64(a.m.conflicts), testutil.ToFloat64(b.m.conflicts),
		testutil.ToFloat64(a.m.duplicate), testutil.ToFloat64(b.m.duplicate))
}

// BenchmarkWriteDumps is the Elasticsearch store's write rate: batches of
// 100 new events of 10 issues (create, fold, mark: three bulk requests and
// two multi-gets per batch).
func BenchmarkWriteDumps(b *testing.B) {
	s := openES(b, testOptions(b))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch := make([]storage.GroupedDump, 100)
		for j := range batch {
			batch[j] = dumptest.Event(strconv.Itoa(n), strconv.Itoa(n%10), t0.Add(time.Duration(n)*time.Millisecond))
			n++
		}
		if _, err := s.WriteDumps(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
