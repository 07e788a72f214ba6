package logstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/querylimit"
	"github.com/vigilhq/vigil/internal/storage"
)

var day0 = time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC).UnixNano()

func TestWriteSelectRoundTrip(t *testing.T) {
	id := func(b byte) model.RecordID { return model.RecordID{1, 2, 3, b} }
	recs := []model.LogRecord{
		{
			ID: id(1), Timestamp: day0 + 1e9, ObservedTimestamp: day0 + 2e9,
			Service: "checkout", Level: "error", Env: "prod", Host: "h1", Grade: 1, Source: "otlp",
			Message: "payment declined: card expired", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
			Attributes: []model.Attr{{Key: "user", Value: "u-1"}, {Key: "empty", Value: ""}},
			Truncated:  true,
		},
		{
			ID: id(2), Timestamp: day0 + 3e9, ObservedTimestamp: day0 + 1e9, // observed before the event
			Service: "checkout", Level: "error", Env: "prod", Host: "h1", Grade: 1, Source: "otlp",
			Message: "",
		},
		{
			ID: id(3), Timestamp: day0 + 2e9, ObservedTimestamp: day0 + 2e9,
			Service: "search", Level: "info", Source: "file", // no env, host or grade
			Message: "¡hola! 日本語 \x00 binary\xff bytes\n\tand a tab",
		},
		{
			ID: id(4), Timestamp: day0 - 1, ObservedTimestamp: 0, // the previous day
			Service: "search", Level: "info", Source: "file",
			Message: strings.Repeat("a long line ", 20000), Truncated: true,
		},
	}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		got := selectAll(t, s, all)
		if want := sortRecords(recs); !reflect.DeepEqual(got, want) {
			t.Fatalf("got\n%+v\nwant\n%+v", got, want)
		}
	}
	dir := t.TempDir()
	s := openStore(t, dir)
	write(t, s, recs)
	t.Run("head", func(t *testing.T) { check(t, s) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if st := s.Stats(); st.Blocks == 0 || st.Rows != int64(len(recs)) || st.Partitions != 2 {
		t.Fatalf("after reopen: %+v; want blocks, %d rows, 2 partitions", st, len(recs))
	}
	t.Run("blocks", func(t *testing.T) { check(t, s) })
}

// TestOrdering writes generated rows over three days in shuffled batches,
// so that some end up in merged blocks, some in small blocks and some in
// the head, and checks the merged order of Select in both directions.
func TestOrdering(t *testing.T) {
	recs := genRecords(1, 6000, day0-dayNs/2, 3*dayNs/6000) // over 3 partitions
	s := openStore(t, t.TempDir())
	shuffled := slices.Clone(recs)
	rng := rand.New(rand.NewPCG(1, 2))
	// Shuffle within windows, so that rows arrive roughly but not exactly in
	// time order, as they do from a pipeline.
	for lo := 0; lo < len(shuffled); lo += 500 {
		w := shuffled[lo:min(lo+500, len(shuffled))]
		rng.Shuffle(len(w), func(i, j int) { w[i], w[j] = w[j], w[i] })
	}
	for lo := 0; lo < len(shuffled); {
		n := 1 + rng.IntN(200)
		write(t, s, shuffled[lo:min(lo+n, len(shuffled))])
		lo += n
	}
	if st := s.Stats(); st.Blocks == 0 || st.Partitions < 3 {
		t.Fatalf("stats %+v: want blocks on disk over 3 partitions", st)
	}
	want := sortRecords(recs)
	f := func(start, end int64) {
		t.Helper()
		var w []model.LogRecord
		for _, r := range want {
			if r.Timestamp >= start && r.Timestamp < end {
				w = append(w, r)
			}
		}
		got := selectAll(t, s, storage.SelectParams{Start: start, End: end})
		if !reflect.DeepEqual(ids(got), ids(w)) {
			t.Fatalf("forward [%d, %d): got %d rows, want %d (or wrong order)", start, end, len(got), len(w))
		}
		if len(got) > 0 && !reflect.DeepEqual(got[0], w[0]) {
			t.Fatalf("forward: first row %+v, want %+v", got[0], w[0])
		}
		got = selectAll(t, s, storage.SelectParams{Start: start, End: end, Backward: true})
		slices.Reverse(got)
		if !reflect.DeepEqual(ids(got), ids(w)) {
			t.Fatalf("backward [%d, %d): got %d rows, want %d (or wrong order)", start, end, len(got), len(w))
		}
	}
	f(all.Start, all.End)
	f(want[100].Timestamp, want[5000].Timestamp)    // across partitions
	f(want[2500].Timestamp, want[2501].Timestamp)   // one row
	f(want[2500].Timestamp, want[2500].Timestamp)   // empty
	f(want[10].Timestamp+1, want[5999].Timestamp+1) // ends at the last row

	// Reopened, everything is in blocks.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	f(all.Start, all.End)
	f(want[100].Timestamp, want[5000].Timestamp)
}

func TestSelectEarlyStop(t *testing.T) {
	recs := genRecords(2, 3000, day0, 1e6)
	s := openStore(t, t.TempDir())
	for lo := 0; lo < len(recs); lo += 100 {
		write(t, s, recs[lo:lo+100])
	}
	want := sortRecords(recs)
	for _, p := range []storage.SelectParams{
		{Start: all.Start, End: all.End},
		{Start: all.Start, End: all.End, Backward: true},
		{Start: all.Start, End: all.End, ContainsFold: []string{"A"}}, // prefetched
	} {
		var got []model.RecordID
		err := s.Select(context.Background(), p, func(r *storage.Row) bool {
			got = append(got, r.ID)
			return len(got) < 10
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 {
			t.Fatalf("%+v: got %d rows after stopping at 10", p, len(got))
		}
		if p.Backward {
			if got[0] != want[len(want)-1].ID {
				t.Fatalf("backward: first row is not the newest")
			}
		} else if len(p.ContainsFold) == 0 && got[9] != want[9].ID {
			t.Fatalf("forward: tenth row is not the tenth oldest")
		}
	}
}

func TestSelectCanceled(t *testing.T) {
	s := openStore(t, t.TempDir())
	write(t, s, genRecords(3, 5000, day0, 1e6))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := s.Select(ctx, storage.SelectParams{Start: all.Start, End: all.End, Contains: []string{"e"}}, func(*storage.Row) bool {
		if n++; n == 1 {
			cancel()
		}
		return true
	})
	if err != context.Canceled {
		t.Fatalf("got err %v after %d rows, want context.Canceled", err, n)
	}
}

func TestMatchers(t *testing.T) {
	s := openStore(t, t.TempDir())
	mk := func(i int, svc, level, env string) model.LogRecord {
		return model.LogRecord{ID: model.RecordID{byte(i + 1)}, Timestamp: day0 + int64(i), Service: svc, Level: level, Env: env, Message: "m"}
	}
	recs := []model.LogRecord{
		mk(0, "api", "info", "prod"),
		mk(1, "api", "error", "prod"),
		mk(2, "web", "info", ""), // no env label
		mk(3, "worker", "warn", "dev"),
	}
	write(t, s, recs)
	m := func(name string, op model.MatchOp, v string) *model.LabelMatcher {
		lm, err := model.NewLabelMatcher(name, op, v)
		if err != nil {
			t.Fatal(err)
		}
		return lm
	}
	f := func(ms []*model.LabelMatcher, want ...int) {
		t.Helper()
		for _, reopened := range []bool{false, true} {
			var got []int
			for _, r := range selectAll(t, s, storage.SelectParams{Start: all.Start, End: all.End, Matchers: ms}) {
				got = append(got, int(r.ID[0]-1))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%v (reopened %v): got rows %v, want %v", ms, reopened, got, want)
			}
			if !reopened {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openStore(t, s.opts.Dir)
			}
		}
	}
	f(nil, 0, 1, 2, 3)
	f([]*model.LabelMatcher{m("service", model.MatchEqual, "api")}, 0, 1)
	f([]*model.LabelMatcher{m("service", model.MatchNotEqual, "api")}, 2, 3)
	f([]*model.LabelMatcher{m("service", model.MatchRegexp, "api|web")}, 0, 1, 2)
	f([]*model.LabelMatcher{m("service", model.MatchNotRegexp, "w.*")}, 0, 1)
	f([]*model.LabelMatcher{m("service", model.MatchEqual, "api"), m("level", model.MatchEqual, "error")}, 1)
	// An absent label matches as "".
	f([]*model.LabelMatcher{m("env", model.MatchEqual, "")}, 2)
	f([]*model.LabelMatcher{m("env", model.MatchNotEqual, "")}, 0, 1, 3)
	f([]*model.LabelMatcher{m("env", model.MatchRegexp, "prod|")}, 0, 1, 2)
	f([]*model.LabelMatcher{m("env", model.MatchNotRegexp, ".+")}, 2)
	f([]*model.LabelMatcher{m("nosuch", model.MatchEqual, "")}, 0, 1, 2, 3)
	f([]*model.LabelMatcher{m("nosuch", model.MatchEqual, "x")})
}

func TestStreamKeyMatchesStreamLabels(t *testing.T) {
	g := newLineGen(4, day0, 1e6)
	var r model.LogRecord
	for i := 0; i < 1000; i++ {
		g.next(&r)
		switch i % 5 { // some records lack some labels
		case 1:
			r.Env = ""
		case 2:
			r.Grade = 0
		case 3:
			r.Host, r.Source = "", ""
		}
		if got, want := appendStreamKey(nil, &r), appendLabelsKey(nil, r.StreamLabels()); string(got) != string(want) {
			t.Fatalf("record %+v: stream key %q, want %q", r, got, want)
		}
	}
}

// TestEqualTimestamps: rows with equal timestamps come in a stable order,
// and backward is exactly the reverse of forward.
func TestEqualTimestamps(t *testing.T) {
	s := openStore(t, t.TempDir())
	var recs []model.LogRecord
	for i := 0; i < 60; i++ {
		recs = append(recs, model.LogRecord{
			ID: model.RecordID{byte(i + 1), 3}, Timestamp: day0 + int64(i%4),
			Service: []string{"a", "b", "c"}[i%3], Message: "same time",
		})
	}
	write(t, s, recs[:30])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	write(t, s, recs[30:]) // half in blocks, half in the head
	for i := 0; i < 3; i++ {
		fwd := ids(selectAll(t, s, all))
		bwd := ids(selectAll(t, s, storage.SelectParams{Start: all.Start, End: all.End, Backward: true}))
		slices.Reverse(bwd)
		if len(fwd) != len(recs) || !slices.Equal(fwd, bwd) {
			t.Fatalf("backward is not the reverse of forward:\n%v\n%v", fwd, bwd)
		}
		if again := ids(selectAll(t, s, all)); !slices.Equal(again, fwd) {
			t.Fatal("order of equal timestamps changed between queries")
		}
	}
}

func TestSelectStopsAtTheBytesBudget(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, recs := range slices.Collect(slices.Chunk(genRecords(4, 5000, day0, 1e6), 500)) {
		write(t, s, recs)
	}
	f := func(budget int64) (int64, error) {
		t.Helper()
		ctx := querylimit.New(querylimit.Options{MaxBytesScanned: budget}).WithLimits(context.Background())
		err := s.Select(ctx, storage.SelectParams{Start: all.Start, End: all.End, Contains: []string{"e"}}, func(*storage.Row) bool { return true })
		return querylimit.BudgetOf(ctx).Scanned(), err
	}
	scanned, err := f(1 << 40)
	if err != nil || scanned == 0 {
		t.Fatalf("within the budget: got %v after %d bytes, want every row and the bytes counted", err, scanned)
	}
	_, err = f(scanned / 4)
	var ee *querylimit.ExceededError
	if !errors.As(err, &ee) || ee.Reason != querylimit.ReasonBytesScanned {
		t.Fatalf("a quarter of the bytes it needs: got %v, want the bytes-scanned budget exceeded", err)
	}
}
