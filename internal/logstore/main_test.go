package logstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

// openStore opens a store in dir with small limits, so that tests exercise
// head rotation, flushes and merges with few rows, and closes it at the end
// of the test unless the test closed it.
func openStore(t testing.TB, dir string, opts ...func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir, tune: &tuning{headBytes: 64 << 10, dedupGen: 1 << 14, smallRows: 64, mergeBlocks: 4, rewriteDead: 1024}}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t testing.TB, s *Store, recs []model.LogRecord) {
	t.Helper()
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// selectAll returns copies of the rows Select passes.
func selectAll(t testing.TB, s *Store, p storage.SelectParams) []model.LogRecord {
	t.Helper()
	var out []model.LogRecord
	err := s.Select(context.Background(), p, func(r *storage.Row) bool {
		out = append(out, rowRecord(r))
		return true
	})
	if err != nil {
		t.Fatalf("Select(%+v): %v", p, err)
	}
	return out
}

// rowRecord copies a row into a record, the way a caller keeps a row.
func rowRecord(r *storage.Row) model.LogRecord {
	rec := model.LogRecord{
		ID: r.ID, Timestamp: r.Timestamp, ObservedTimestamp: r.ObservedTimestamp,
		Env: r.Labels.Get(model.LabelEnv), Host: r.Labels.Get(model.LabelHost), Level: r.Labels.Get(model.LabelLevel),
		Service: r.Labels.Get(model.LabelService), Source: r.Labels.Get(model.LabelSource),
		Message: clone(r.Message), TraceID: clone(r.TraceID), SpanID: clone(r.SpanID), Truncated: r.Truncated,
	}
	if g := r.Labels.Get(model.LabelGrade); g != "" {
		fmt.Sscan(g, &rec.Grade)
	}
	for _, a := range r.Attributes {
		rec.Attributes = append(rec.Attributes, model.Attr{Key: clone(a.Key), Value: clone(a.Value)})
	}
	return rec
}

func clone(s string) string { return string([]byte(s)) }

// all selects every time.
var all = storage.SelectParams{Start: -1 << 63, End: 1<<63 - 1}

// sortRecords sorts records as a forward Select returns them when
// timestamps are unique.
func sortRecords(recs []model.LogRecord) []model.LogRecord {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b model.LogRecord) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return 0
	})
	return recs
}

func ids(recs []model.LogRecord) []model.RecordID {
	out := make([]model.RecordID, len(recs))
	for i := range recs {
		out[i] = recs[i].ID
	}
	return out
}

func genRecords(seed uint64, n int, start, step int64) []model.LogRecord {
	g := newLineGen(seed, start, step)
	recs := make([]model.LogRecord, n)
	for i := range recs {
		g.next(&recs[i])
	}
	return recs
}
