package logstore

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// legacyBase is the first timestamp of testdata/store-v1: an hour before
// a UTC midnight, so the data spans two day partitions.
var legacyBase = time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC).UnixNano()

// legacyRecords are the records of testdata/store-v1, written in three
// rounds (the store closed after each) by the release whose blocks carry
// no statistics. Timestamps are irregular, so blocks and step buckets cut
// through each other.
func legacyRecords(round int) []model.LogRecord {
	services := []string{"checkout", "api", "worker"}
	levels := []string{"info", "warn", "error"}
	var recs []model.LogRecord
	for i := 0; i < 4000; i++ {
		n := round*4000 + i
		recs = append(recs, model.LogRecord{
			ID:        model.RecordID{byte(n), byte(n >> 8), byte(n >> 16), 0x1e},
			Timestamp: legacyBase + int64(n)*int64(time.Second)*7/10 + int64(n%13)*int64(time.Millisecond)*37,
			Service:   services[n%3], Level: levels[n/3%3], Host: "h" + strconv.Itoa(n%2), Source: "otlp",
			Message: fmt.Sprintf("msg=%q n=%d%s", "request served", n, string(make([]byte, n%17))),
		})
	}
	return recs
}

// statsWant sums recs as StreamStats must, computed from the records
// alone: rows and message bytes per stream and bucket.
func statsWant(recs []model.LogRecord, ms []*model.LabelMatcher, start, end, step int64) map[string][2][]int64 {
	n := storage.StatBuckets(start, end, step)
	want := map[string][2][]int64{}
	for i := range recs {
		r := &recs[i]
		ls := r.StreamLabels()
		if r.Timestamp < start || r.Timestamp >= end || !model.MatchLabels(ms, ls) {
			continue
		}
		w, ok := want[ls.String()]
		if !ok {
			w = [2][]int64{make([]int64, n), make([]int64, n)}
			want[ls.String()] = w
		}
		b := 0
		if step > 0 {
			b = min(int((r.Timestamp-start)/step), n-1)
		}
		w[0][b]++
		w[1][b] += int64(len(r.Message))
	}
	return want
}

func checkStats(t *testing.T, s *Store, recs []model.LogRecord, ms []*model.LabelMatcher, start, end, step int64) {
	t.Helper()
	stats, err := s.StreamStats(context.Background(), ms, start, end, step)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2][]int64{}
	for _, st := range stats {
		if _, dup := got[st.Labels.String()]; dup {
			t.Errorf("stream %s twice", st.Labels)
		}
		got[st.Labels.String()] = [2][]int64{st.Rows, st.Bytes}
	}
	if want := statsWant(recs, ms, start, end, step); !reflect.DeepEqual(got, want) {
		t.Errorf("StreamStats(%v, %d, %d, %d):\n got %.1000v\nwant %.1000v", ms, start, end, step, fmt.Sprint(got), fmt.Sprint(want))
	}
}

// statsCases are ranges and steps that cut through blocks, bucket edges
// and the day boundary of data starting at base and lasting span.
func statsCases(base, span int64) [][3]int64 {
	s := int64(time.Second)
	return [][3]int64{
		{base, base + span + 1, 0},
		{base - s, base + span + s, 0},
		{base + span/3 + 123, base + 2*span/3 + 7, 0},
		{base, base + span + 1, 60 * s},
		{base + 17*s + 5, base + span - 3*s, 7*s + 333},
		{base + span/2, base + span/2 + s, int64(time.Millisecond)},
		{base + span + 10*s, base + span + 20*s, 0},
	}
}

func statsMatchers(t testing.TB) [][]*model.LabelMatcher {
	return [][]*model.LabelMatcher{
		nil,
		{mustMatcher(t, "service", model.MatchRegexp, ".+")},
		{mustMatcher(t, "service", model.MatchEqual, "api"), mustMatcher(t, "level", model.MatchNotEqual, "warn")},
		{mustMatcher(t, "host", model.MatchEqual, "nope")},
	}
}

// TestStreamStatsLegacyStore opens a data directory written by the
// release before index entries carried message bytes (testdata/store-v1,
// the three rounds of legacyRecords, written with default options) and
// checks that StreamStats reads its blocks and counts them exactly.
func TestStreamStatsLegacyStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/store-v1")); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	var recs []model.LogRecord
	for round := range 3 {
		recs = append(recs, legacyRecords(round)...)
	}
	s.mu.RLock()
	blocks := 0
	for _, p := range s.parts {
		for _, m := range p.blocks {
			blocks++
			if m.flags&flagStats != 0 {
				t.Errorf("block at %d of %s has statistics: testdata is not from the previous release", m.off, p.name)
			}
		}
	}
	s.mu.RUnlock()
	if blocks == 0 {
		t.Fatal("no blocks in testdata/store-v1")
	}
	span := recs[len(recs)-1].Timestamp - legacyBase
	for _, ms := range statsMatchers(t) {
		for _, c := range statsCases(legacyBase, span) {
			checkStats(t, s, recs, ms, c[0], c[1], c[2])
		}
	}
	// Rows written now land in the same partitions, in blocks with
	// statistics, next to the old ones.
	more := legacyRecords(3)
	write(t, s, more)
	recs = append(recs, more...)
	span = recs[len(recs)-1].Timestamp - legacyBase
	for _, c := range statsCases(legacyBase, span) {
		checkStats(t, s, recs, nil, c[0], c[1], c[2])
	}
}

// TestStreamStats checks StreamStats against sums over the written
// records, with rows in the head, in flushed and in merged blocks, and
// out of order.
func TestStreamStats(t *testing.T) {
	s := openStore(t, t.TempDir())
	var recs []model.LogRecord
	for round := range 6 {
		batch := legacyRecords(round)
		if round == 4 {
			slices.Reverse(batch)
		}
		for len(batch) > 0 {
			n := min(len(batch), 700)
			write(t, s, batch[:n])
			recs = append(recs, batch[:n]...)
			batch = batch[n:]
		}
		if round == 2 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, s.opts.Dir)
		}
	}
	span := recs[len(recs)-1].Timestamp - legacyBase
	for _, r := range recs {
		span = max(span, r.Timestamp-legacyBase)
	}
	withStats := 0
	s.mu.RLock()
	for _, p := range s.parts {
		for _, m := range p.blocks {
			if m.flags&flagStats != 0 {
				withStats++
			}
		}
	}
	s.mu.RUnlock()
	if withStats == 0 {
		t.Fatal("no block with statistics")
	}
	for _, ms := range statsMatchers(t) {
		for _, c := range statsCases(legacyBase, span) {
			checkStats(t, s, recs, ms, c[0], c[1], c[2])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.opts.Dir)
	for _, c := range statsCases(legacyBase, span) {
		checkStats(t, s, recs, statsMatchers(t)[1], c[0], c[1], c[2])
	}
}

// TestStreamStatsCorruptBlock: a block whose stats prefix fails its
// checksum is skipped and counted, as Select skips it, not an error.
func TestStreamStatsCorruptBlock(t *testing.T) {
	dir := t.TempDir()
	noMerge := func(o *Options) { o.tune.mergeBlocks = 1 << 30 } // blocks stay where they are
	s := openStore(t, dir, noMerge)
	write(t, s, legacyRecords(0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, noMerge)
	s.mu.RLock()
	var p *partition
	var m *blockMeta
	for _, part := range s.parts {
		for _, b := range part.blocks {
			if b.flags&flagStats != 0 && b.rows > 1 {
				p, m = part, b
			}
		}
	}
	s.mu.RUnlock()
	if m == nil {
		t.Fatal("no block with statistics")
	}
	f, err := os.OpenFile(p.data.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The last byte of the stats prefix: in the length chunk.
	at := m.off + int64(m.bloomLen) + int64(m.statsLen) - 1
	b := []byte{0}
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A step edge inside the block makes StreamStats read its prefix.
	step := (m.maxTs - m.minTs) / 2
	stats, err := s.StreamStats(context.Background(), nil, legacyBase, m.maxTs+1, step)
	if err != nil {
		t.Fatalf("StreamStats: %v", err)
	}
	if n := counterValue(s.m.corruptBlocks); n != 1 {
		t.Errorf("corrupt blocks counted: %v, want 1", n)
	}
	var rows int64
	for _, st := range stats {
		for _, n := range st.Rows {
			rows += n
		}
	}
	want := int64(len(selectAll(t, s, storage.SelectParams{Start: legacyBase, End: m.maxTs + 1})))
	if rows != want || rows == 0 {
		t.Errorf("StreamStats counted %d rows; Select, which skips the block too, %d", rows, want)
	}
}
