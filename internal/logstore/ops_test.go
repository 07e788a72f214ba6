package logstore

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// TestRetentionAtOpen: Open applies retention with the real clock, in the
// future of these 2025 rows.
func TestRetentionAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	write(t, s, genRecords(9, 100, day0, 1e9))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, func(o *Options) { o.Retention = 24 * time.Hour })
	if st := s.Stats(); st.Partitions != 0 || st.Rows != 0 {
		t.Fatalf("after Open with retention: %+v, want nothing", st)
	}
	if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(day0)))); !os.IsNotExist(err) {
		t.Fatalf("expired partition still on disk (err %v)", err)
	}
}

// TestRetainDropsOldPartitions checks Retain with a chosen clock: partitions
// whose day ended before now-retention go, with their rows in the head.
func TestRetainDropsOldPartitions(t *testing.T) {
	now := time.Unix(0, day0).Add(10*24*time.Hour + 3*time.Hour) // day 10, 03:00
	at := func(daysAgo int) int64 { return now.Add(-time.Duration(daysAgo) * 24 * time.Hour).UnixNano() }
	rec := func(i, daysAgo int) model.LogRecord {
		return model.LogRecord{ID: model.RecordID{byte(i + 1)}, Timestamp: at(daysAgo), Service: "s", Message: "m"}
	}
	dir := t.TempDir()
	s := openStore(t, dir)
	write(t, s, []model.LogRecord{rec(0, 9), rec(1, 5), rec(2, 4), rec(3, 3), rec(4, 1)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	write(t, s, []model.LogRecord{rec(5, 9), rec(6, 0)}) // in the head
	s.retention.Store(int64(3*24*time.Hour + time.Hour))
	// now-retention is day 6, 02:00: days 1, 5 and 6 (ended at day 6 00:00)
	// are gone, day 7 (ended day 8) is kept.
	if err := s.Retain(now); err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range selectAll(t, s, all) {
		got = append(got, int(r.ID[0]-1))
	}
	if want := []int{3, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("rows after Retain: %v, want %v", got, want)
	}
	for _, d := range []int{9, 5, 4} {
		if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(at(d))))); !os.IsNotExist(err) {
			t.Fatalf("partition of %d days ago still on disk (err %v)", d, err)
		}
	}
	if st := s.Stats(); st.Partitions != 3 {
		t.Fatalf("stats %+v: want 3 partitions", st)
	}
	// Rows for dropped days are not stored again.
	write(t, s, []model.LogRecord{rec(7, 8)})
	if n := len(selectAll(t, s, all)); n != 3 {
		t.Fatalf("after writing an expired row: %d rows, want 3", n)
	}
	// Nor do they come back from the WAL or the files after a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if n := len(selectAll(t, s, all)); n != 3 {
		t.Fatalf("after reopen: %d rows, want 3", n)
	}
}

// TestSetRetention changes the retention of an open store, as a reload of
// a tenant's retention does: a shorter one drops the days past it at once;
// a longer one takes records of the days it adds again.
func TestSetRetention(t *testing.T) {
	now := time.Now()
	rec := func(i, daysAgo int) model.LogRecord {
		return model.LogRecord{ID: model.RecordID{byte(i + 1)}, Timestamp: now.Add(-time.Duration(daysAgo) * 24 * time.Hour).UnixNano(), Service: "s", Message: "m"}
	}
	dir := t.TempDir()
	s := openStore(t, dir, func(o *Options) { o.Retention = 30 * 24 * time.Hour })
	write(t, s, []model.LogRecord{rec(0, 10), rec(1, 5), rec(2, 0)})
	rows := func() []int {
		var got []int
		for _, r := range selectAll(t, s, all) {
			got = append(got, int(r.ID[0]-1))
		}
		slices.Sort(got)
		return got
	}
	if err := s.SetRetention(7 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, want := rows(), []int{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("rows after a 7-day retention: %v, want %v", got, want)
	}
	write(t, s, []model.LogRecord{rec(3, 10)}) // past the retention: not stored
	if got, want := rows(), []int{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("rows after writing one 10 days old: %v, want %v", got, want)
	}
	if err := s.SetRetention(30 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	write(t, s, []model.LogRecord{rec(4, 10)}) // within the longer one again
	if got, want := rows(), []int{1, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("rows after a 30-day retention: %v, want %v", got, want)
	}
	if err := s.SetRetention(0); err != nil { // keeps everything
		t.Fatal(err)
	}
	if got, want := rows(), []int{1, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("rows without retention: %v, want %v", got, want)
	}
}

// TestRetainWhileQuerying drops a partition a query is reading.
func TestRetainWhileQuerying(t *testing.T) {
	s := openStore(t, t.TempDir())
	write(t, s, genRecords(8, 2000, day0, 1e6))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	s.retention.Store(int64(time.Hour))
	n := 0
	err := s.Select(context.Background(), all, func(*storage.Row) bool {
		if n++; n == 1 {
			if err := s.Retain(time.Unix(0, day0+3*dayNs)); err != nil {
				t.Error(err)
			}
		}
		return true
	})
	if err != nil || n != 2000 {
		t.Fatalf("query that outlived its partition: %d rows, err %v; want 2000 rows", n, err)
	}
	if got := len(selectAll(t, s, all)); got != 0 {
		t.Fatalf("after Retain: %d rows", got)
	}
	if _, err := os.Stat(filepath.Join(s.opts.Dir, dayName(dayOf(day0)))); !os.IsNotExist(err) {
		t.Fatalf("dropped partition still on disk once the query ended (err %v)", err)
	}
}

func TestConcurrentWriteSelect(t *testing.T) {
	s := openStore(t, t.TempDir())
	const writers, batches, size = 4, 40, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				recs := genRecords(uint64(100+w*batches+b), size, day0+int64(b)*1e9, 1e6)
				// Every writer also redelivers its previous batch.
				if b > 0 {
					recs = append(recs, genRecords(uint64(100+w*batches+b-1), size, day0+int64(b-1)*1e9, 1e6)...)
				}
				if err := s.Write(ctx, recs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				p := storage.SelectParams{Start: all.Start, End: all.End, Backward: r == 1}
				if r == 1 {
					p.ContainsFold = []string{"GET"}
				}
				seen := map[model.RecordID]bool{}
				last := int64(0)
				err := s.Select(ctx, p, func(row *storage.Row) bool {
					if seen[row.ID] {
						t.Errorf("row %s returned twice", row.ID)
						return false
					}
					seen[row.ID] = true
					if last != 0 && (row.Timestamp < last) != p.Backward && row.Timestamp != last {
						t.Errorf("rows out of order")
						return false
					}
					last = row.Timestamp
					return true
				})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Series(ctx, all.Start, all.End, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if got, want := len(selectAll(t, s, all)), writers*batches*size; got != want {
		t.Fatalf("got %d rows, want %d", got, want)
	}
}

func TestLabelQueries(t *testing.T) {
	s := openStore(t, t.TempDir())
	rec := func(i int, ts int64, svc, level, env string) model.LogRecord {
		return model.LogRecord{ID: model.RecordID{byte(i + 1)}, Timestamp: ts, Service: svc, Level: level, Env: env, Grade: 2, Message: "m"}
	}
	write(t, s, []model.LogRecord{
		rec(0, day0, "api", "info", "prod"),
		rec(1, day0+10, "api", "error", "prod"),
		rec(2, day0+dayNs, "web", "info", ""),
	})
	ctx := context.Background()
	lm := func(name string, op model.MatchOp, v string) []*model.LabelMatcher {
		m, err := model.NewLabelMatcher(name, op, v)
		if err != nil {
			t.Fatal(err)
		}
		return []*model.LabelMatcher{m}
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, s.opts.Dir)
		}
		names, err := s.LabelNames(ctx, all.Start, all.End)
		if want := []string{"env", "grade", "level", "service"}; err != nil || !slices.Equal(names, want) {
			t.Fatalf("LabelNames = %v, %v; want %v", names, err, want)
		}
		names, _ = s.LabelNames(ctx, day0+dayNs, all.End)
		if want := []string{"grade", "level", "service"}; !slices.Equal(names, want) {
			t.Fatalf("LabelNames on the second day = %v, want %v", names, want)
		}
		f := func(name string, start, end int64, ms []*model.LabelMatcher, want ...string) {
			t.Helper()
			got, err := s.LabelValues(ctx, name, start, end, ms)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("LabelValues(%s, %v) = %v, %v; want %v", name, ms, got, err, want)
			}
		}
		f("service", all.Start, all.End, nil, "api", "web")
		f("level", all.Start, all.End, lm("service", model.MatchEqual, "api"), "error", "info")
		f("env", all.Start, all.End, nil, "prod")
		f("level", day0+5, day0+6, nil) // between the rows of one stream per partition span
		f("service", day0+11, all.End, nil, "web")
		f("nosuch", all.Start, all.End, nil)

		series, err := s.Series(ctx, all.Start, all.End, lm("env", model.MatchEqual, ""))
		want := []model.Labels{{{Name: "grade", Value: "2"}, {Name: "level", Value: "info"}, {Name: "service", Value: "web"}}}
		if err != nil || !reflect.DeepEqual(series, want) {
			t.Fatalf("Series = %v, %v; want %v", series, err, want)
		}
		series, _ = s.Series(ctx, all.Start, all.End, nil)
		if len(series) != 3 {
			t.Fatalf("Series = %v, want 3", series)
		}
	}
}

// TestCompaction writes a trickle of small batches and checks that small
// blocks are merged, the space of the replaced ones is given back, and the
// data survives.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(o *Options) {
		o.tune.headBytes = 8 << 10
		o.tune.smallRows = 200
		o.tune.mergeBlocks = 4
		o.tune.rewriteDead = 16
	})
	var recs []model.LogRecord
	for i := 0; i < 3000; i++ {
		recs = append(recs, model.LogRecord{
			ID: model.RecordID{byte(i), byte(i >> 8), 2}, Timestamp: day0 + int64(i)*1e6,
			Service: []string{"a", "b"}[i%2], Message: "a line of a trickle of tiny writes",
		})
	}
	for lo := 0; lo < len(recs); lo += 5 {
		write(t, s, recs[lo:lo+5])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The index was rewritten as one snapshot of the live blocks.
	b, err := os.ReadFile(filepath.Join(dir, dayName(dayOf(day0)), indexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if payload, _, ok := nextRecord(b); !ok || payload[0] != idxSnapshot {
		t.Fatalf("index does not start with a snapshot record")
	}
	s = openStore(t, dir, func(o *Options) { o.tune.smallRows = 200 })
	st := s.Stats()
	if st.Blocks > 30 {
		t.Fatalf("%d blocks for 3000 rows in 2 streams: small blocks were not merged", st.Blocks)
	}
	if got := selectAll(t, s, all); !slices.Equal(ids(got), ids(recs)) {
		t.Fatalf("after merges: %d rows, want %d", len(got), len(recs))
	}
	fi, err := os.Stat(filepath.Join(dir, dayName(dayOf(day0)), dataFileName))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.parts[dayOf(day0)]; p.diskBytes() >= fi.Size() {
		t.Logf("replaced blocks were not punched out (file system without hole punching?): %d bytes on disk, %d apparent", p.diskBytes(), fi.Size())
	}
}
