package esstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

var (
	services = []string{"api", "web", "auth", "", "billing-v2"}
	levels   = []string{"info", "warn", "error", ""}
	envs     = []string{"prod", "staging"}
	hosts    = []string{"h1", "h2", "h3", "h10"}
	sources  = []string{"http", "otlp", "file"}
	base     = time.Date(2024, 3, 10, 18, 0, 0, 0, time.UTC).UnixNano()
)

// genRecords makes n records over about 14 hours from 2024-03-10 18:00 UTC
// (two days), two records per timestamp.
func genRecords(n int) []model.LogRecord {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	recs := make([]model.LogRecord, n)
	for i := range recs {
		r := &recs[i]
		for j := range r.ID {
			r.ID[j] = byte(rng.Uint32())
		}
		r.Timestamp = base + int64(i/2)*int64(20*time.Second)
		r.ObservedTimestamp = r.Timestamp + int64(time.Millisecond)
		r.Service = services[rng.IntN(len(services))]
		r.Level = levels[rng.IntN(len(levels))]
		r.Env = envs[rng.IntN(len(envs))]
		r.Host = hosts[rng.IntN(len(hosts))]
		r.Grade = rng.IntN(5)
		r.Source = sources[rng.IntN(len(sources))]
		switch rng.IntN(5) {
		case 0:
			r.Message = fmt.Sprintf("GET /api/users/%d took %d ms status=%d", rng.IntN(1000), rng.IntN(200), 200+100*rng.IntN(4))
		case 1:
			r.Message = fmt.Sprintf("connection timeout after %ds to db-%d", rng.IntN(30), rng.IntN(3))
		case 2:
			r.Message = fmt.Sprintf(`{"level":"info","msg":"user u%d logged in","trace":"%x"}`, rng.IntN(100), rng.Uint64())
		case 3:
			r.Message = fmt.Sprintf("Error: disk full on /dev/sd%c\n\tat write()", 'a'+rune(rng.IntN(4)))
		default: // a token longer than Lucene's 255-character cut
			r.Message = strings.Repeat("ab", 120+rng.IntN(20)) + "zzneedlezz" + strings.Repeat("c", rng.IntN(300))
		}
		if r.Source == "file" {
			r.Attributes = append(r.Attributes, model.Attr{Key: "log.file.path", Value: "/var/log/app.log"})
		}
		if rng.IntN(2) == 0 {
			r.Attributes = append(r.Attributes, model.Attr{Key: "user_id", Value: fmt.Sprint(rng.IntN(50))}, model.Attr{Key: "req.id", Value: fmt.Sprintf("%x", rng.Uint32())})
		}
		if i%2 == 0 {
			r.TraceID, r.SpanID = fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()), fmt.Sprintf("%016x", rng.Uint64())
		}
		r.Truncated = rng.IntN(50) == 0
	}
	return recs
}

// reference selects like Select, in Go.
func reference(recs []model.LogRecord, p storage.SelectParams) []model.LogRecord {
	var out []model.LogRecord
	for _, r := range recs {
		if r.Timestamp < p.Start || r.Timestamp >= p.End || !model.MatchLabels(p.Matchers, r.StreamLabels()) ||
			!containsAll(r.Message, p.Contains, p.ContainsFold) || !containsAny(r.Message, p.ContainsAny) {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b model.LogRecord) int {
		if a.Timestamp != b.Timestamp {
			return cmpInt(a.Timestamp, b.Timestamp)
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	if p.Backward {
		slices.Reverse(out)
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rowRecord copies a row into a record.
func rowRecord(r *storage.Row) model.LogRecord {
	rec := model.LogRecord{
		ID: r.ID, Timestamp: r.Timestamp, ObservedTimestamp: r.ObservedTimestamp,
		Env: r.Labels.Get(model.LabelEnv), Host: r.Labels.Get(model.LabelHost), Level: r.Labels.Get(model.LabelLevel),
		Service: r.Labels.Get(model.LabelService), Source: r.Labels.Get(model.LabelSource),
		Message: r.Message, TraceID: r.TraceID, SpanID: r.SpanID, Truncated: r.Truncated,
		Attributes: slices.Clone(r.Attributes),
	}
	if g := r.Labels.Get(model.LabelGrade); g != "" {
		fmt.Sscan(g, &rec.Grade)
	}
	return rec
}

func ids(recs []model.LogRecord) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].ID.String()
	}
	return out
}

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff(a, b []string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestESWriteSelect(t *testing.T) {
	s := openES(t, func(o *Options) { o.BulkMaxDocs = 700; o.SearchPageSize = 300 })
	ctx := context.Background()
	recs := genRecords(5000)
	if err := s.Write(ctx, recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := catIndices(t, s); len(got) != 2 {
		t.Fatalf("indices %v, want two days", got)
	}
	all := storage.SelectParams{Start: math.MinInt64, End: math.MaxInt64}
	sel := func(p storage.SelectParams, limit int) []model.LogRecord {
		t.Helper()
		var out []model.LogRecord
		err := s.Select(ctx, p, func(r *storage.Row) bool {
			out = append(out, rowRecord(r))
			return limit <= 0 || len(out) < limit
		})
		if err != nil {
			t.Fatalf("Select %+v: %v", p, err)
		}
		return out
	}
	ms := func(ss ...string) []*model.LabelMatcher {
		var out []*model.LabelMatcher
		for _, x := range ss {
			out = append(out, mustMatcher(t, x))
		}
		return out
	}

	// every field reads back as written
	got := sel(all, 0)
	want := reference(recs, all)
	if len(got) != len(want) {
		t.Fatalf("Select all: got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		if w.Grade < 0 {
			w.Grade = 0
		}
		if fmt.Sprint(got[i]) != fmt.Sprint(w) {
			t.Fatalf("row %d:\ngot  %+v\nwant %+v", i, got[i], w)
		}
	}

	window := storage.SelectParams{Start: base + int64(5*time.Hour) + 7, End: base + int64(8*time.Hour)} // across midnight
	cases := []struct {
		name  string
		p     storage.SelectParams
		limit int
	}{
		{name: "backward", p: storage.SelectParams{Start: all.Start, End: all.End, Backward: true}},
		{name: "=", p: storage.SelectParams{Matchers: ms(`service="api"`)}},
		{name: "!= keeps absent", p: storage.SelectParams{Matchers: ms(`service!="api"`)}},
		{name: `=""`, p: storage.SelectParams{Matchers: ms(`service=""`)}},
		{name: `!=""`, p: storage.SelectParams{Matchers: ms(`level!=""`, `env="prod"`)}},
		{name: "=~", p: storage.SelectParams{Matchers: ms(`service=~"a.*|web"`)}},
		{name: "=~ matching empty", p: storage.SelectParams{Matchers: ms(`service=~"(?i)API|"`)}},
		{name: "!~", p: storage.SelectParams{Matchers: ms(`service!~"a.*"`, `host=~"h1.?"`)}},
		{name: "!~ matching empty", p: storage.SelectParams{Matchers: ms(`level!~"info|"`)}},
		{name: "grade", p: storage.SelectParams{Matchers: ms(`grade="2"`)}},
		{name: "grade !~", p: storage.SelectParams{Matchers: ms(`grade!~"[12]"`)}},
		{name: "grade absent", p: storage.SelectParams{Matchers: ms(`grade=""`, `source!="file"`)}},
		{name: "untranslatable regexp", p: storage.SelectParams{Matchers: ms(`host=~"h1\\b.*"`)}},
		{name: "contains word part", p: storage.SelectParams{Contains: []string{"rror"}}},
		{name: "contains phrase", p: storage.SelectParams{Contains: []string{"took 1"}, Matchers: ms(`level="error"`)}},
		{name: "contains path", p: storage.SelectParams{Contains: []string{"GET /api/users/1"}}},
		{name: "contains in long token", p: storage.SelectParams{Contains: []string{"zzneedlezz"}}},
		{name: "contains newline", p: storage.SelectParams{Contains: []string{"sdb\n\tat"}}},
		{name: "contains fold", p: storage.SelectParams{ContainsFold: []string{"ERROR: DISK"}, Contains: []string{"sdc"}}},
		{name: "contains none", p: storage.SelectParams{Contains: []string{"no such text"}}},
		{name: "contains any", p: storage.SelectParams{ContainsAny: [][]string{{"rror", "timeout after 1"}}}},
		{name: "contains any of two groups", p: storage.SelectParams{ContainsAny: [][]string{{"sda", "sdb"}, {"Error", "zz"}}, Contains: []string{"disk"}}},
		{name: "contains any none", p: storage.SelectParams{ContainsAny: [][]string{{"no such text", "nor this"}}}},
		{name: "window", p: storage.SelectParams{Start: window.Start, End: window.End, Matchers: ms(`service="web"`)}},
		{name: "window backward", p: storage.SelectParams{Start: window.Start, End: window.End, Backward: true, Contains: []string{"timeout"}}},
		{name: "early stop", p: storage.SelectParams{Backward: true, Matchers: ms(`level="error"`)}, limit: 7},
		{name: "early stop across pages", p: storage.SelectParams{Matchers: ms(`env="prod"`)}, limit: 450},
	}
	for _, c := range cases {
		p := c.p
		if p.Start == 0 && p.End == 0 {
			p.Start, p.End = all.Start, all.End
		}
		want := reference(recs, p)
		if c.limit > 0 && len(want) > c.limit {
			want = want[:c.limit]
		}
		got := sel(p, c.limit)
		if len(want) == 0 && !strings.HasSuffix(c.name, " none") {
			t.Errorf("%s: the reference selects nothing; the case tests nothing", c.name)
		}
		if i := firstDiff(ids(got), ids(want)); i >= 0 {
			t.Errorf("%s: got %d rows, want %d; first difference at row %d", c.name, len(got), len(want), i)
		}
		// In any order (a point in time, pages of 3,000 over both days'
		// indices): the same rows, each once.
		p.AnyOrder = true
		got = sel(p, c.limit)
		if c.limit > 0 {
			if len(got) != len(want) {
				t.Errorf("%s in any order: got %d rows, want %d", c.name, len(got), len(want))
			}
			continue
		}
		byID := func(a, b model.LogRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) }
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		if len(got) != len(want) {
			t.Errorf("%s in any order: got %d rows, want %d", c.name, len(got), len(want))
			continue
		}
		for i := range want {
			w := want[i]
			w.Grade = max(w.Grade, 0)
			if fmt.Sprint(got[i]) != fmt.Sprint(w) {
				t.Errorf("%s in any order: row %d:\ngot  %+v\nwant %+v", c.name, i, got[i], w)
				break
			}
		}
	}

	// counts and labels
	count := func(m []*model.LabelMatcher) int64 {
		n, err := s.Count(ctx, all.Start, all.End, m)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(nil); n != 5000 {
		t.Errorf("Count = %d, want 5000", n)
	}
	for _, m := range [][]*model.LabelMatcher{ms(`service!="api"`), ms(`host=~"h1\\b.*"`), ms(`grade=""`, `level="warn"`)} {
		if n, w := count(m), len(reference(recs, storage.SelectParams{Start: all.Start, End: all.End, Matchers: m})); n != int64(w) {
			t.Errorf("Count %v = %d, want %d", m, n, w)
		}
	}
	names, err := s.LabelNames(ctx, all.Start, all.End)
	if err != nil || strings.Join(names, ",") != "env,grade,host,level,service,source" {
		t.Errorf("LabelNames = %v, %v", names, err)
	}
	names, err = s.LabelNames(ctx, base-int64(time.Hour), base)
	if err != nil || len(names) != 0 {
		t.Errorf("LabelNames before the data = %v, %v", names, err)
	}
	for _, c := range []struct {
		name string
		ms   []*model.LabelMatcher
		p    storage.SelectParams
	}{
		{name: "service"},
		{name: "grade", ms: ms(`env="prod"`)},
		{name: "level", ms: ms(`host=~"h1\\b.*"`)},
		{name: "host", ms: ms(`service="auth"`), p: window},
		{name: "nonexistent"},
	} {
		p := c.p
		if p.End == 0 {
			p = all
		}
		got, err := s.LabelValues(ctx, c.name, p.Start, p.End, c.ms)
		if err != nil {
			t.Fatal(err)
		}
		p.Matchers = c.ms
		var want []string
		for _, r := range reference(recs, p) {
			if v := r.StreamLabels().Get(c.name); v != "" && !slices.Contains(want, v) {
				want = append(want, v)
			}
		}
		slices.Sort(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("LabelValues(%s, %v) = %v, want %v", c.name, c.ms, got, want)
		}
	}
	for _, m := range [][]*model.LabelMatcher{nil, ms(`service="api"`, `level!="info"`), ms(`host=~"h1\\b.*"`)} {
		series, err := s.Series(ctx, all.Start, all.End, m)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, ls := range series {
			got = append(got, ls.String())
		}
		for _, r := range reference(recs, storage.SelectParams{Start: all.Start, End: all.End, Matchers: m}) {
			if k := r.StreamLabels().String(); !slices.Contains(want, k) {
				want = append(want, k)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("Series(%v): got %d series, want %d", m, len(got), len(want))
		}
	}
	perMinute, err := s.CountByMinute(ctx, all.Start, all.End)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range perMinute {
		sum += n
	}
	r0 := recs[0]
	wantCell := int64(0)
	for _, r := range recs {
		if r.Timestamp/60e9 == r0.Timestamp/60e9 && r.Service == r0.Service && r.Source == r0.Source {
			wantCell++
		}
	}
	if got := perMinute[MinuteKey{Minute: r0.Timestamp / 60e9 * 60e9, Service: r0.Service, Source: r0.Source}]; sum != 5000 || got != wantCell {
		t.Errorf("CountByMinute: total %d (want 5000), first cell %d (want %d)", sum, got, wantCell)
	}
	probe := []model.RecordID{recs[0].ID, recs[4999].ID, {1, 2, 3}, recs[2500].ID}
	found, err := s.ExistingIDs(ctx, probe)
	if err != nil || len(found) != 3 || found[model.RecordID{1, 2, 3}] {
		t.Errorf("ExistingIDs = %v, %v; want the three stored ids", found, err)
	}

	// redelivery: writing the same records again stores nothing new
	if err := s.Write(ctx, recs[:3000]); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(nil); n != 5000 {
		t.Errorf("Count after rewrite = %d, want 5000", n)
	}
}
