package spanstore

import (
	"context"
	"errors"
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

func TestRoundTripEveryField(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	want := fullSpan()
	write(t, s, want)
	check := func(s *Store) {
		t.Helper()
		got, err := s.GetTrace(context.Background(), want.TraceID)
		if err != nil {
			t.Fatalf("GetTrace: %v", err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	}
	check(s)
	s.Close()
	check(openStore(t, dir)) // and after reopening
}

func TestCodecRejectsCorrupt(t *testing.T) {
	sp := fullSpan()
	b := appendSpan(nil, &sp)
	for i := 0; i < len(b); i++ {
		if _, err := decodeSpan(b[:i]); err == nil {
			t.Fatalf("decodeSpan of %d of %d bytes: got nil error", i, len(b))
		}
	}
	if _, err := decodeSpan(append(b, 0)); err == nil {
		t.Fatalf("decodeSpan with a trailing byte: got nil error")
	}
}

func TestGetTraceNotFound(t *testing.T) {
	s := openStore(t, t.TempDir())
	if _, err := s.GetTrace(context.Background(), tid(1)); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("got %v, want ErrTraceNotFound", err)
	}
}

func TestIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a, b := span(1, 1, "svc", "op", day0, 10), span(1, 2, "svc", "op", day0+1, 10)
	write(t, s, a, a, b) // a duplicate inside one batch
	write(t, s, b, a)    // a redelivery
	count := func(s *Store) int {
		t.Helper()
		got, err := s.GetTrace(context.Background(), tid(1))
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if n := count(s); n != 2 {
		t.Fatalf("got %d spans, want 2", n)
	}
	s.Close()
	s = openStore(t, dir)
	write(t, s, a, b) // a redelivery after a restart
	if n := count(s); n != 2 {
		t.Fatalf("after reopen: got %d spans, want 2", n)
	}
	if got := s.DiskBytes(); got == 0 {
		t.Fatalf("DiskBytes = 0")
	}
}

// TestTornTail cuts the span file at every length inside its last record,
// as a crash during a write leaves it, and checks the store opens with the
// earlier records intact and accepts the lost span again.
func TestTornTail(t *testing.T) {
	live := t.TempDir()
	s := openStore(t, live)
	a, b := span(1, 1, "svc", "op", day0, 10), fullSpan()
	write(t, s, a)
	recA := int(s.DiskBytes())
	write(t, s, b)
	s.Close()
	path := filepath.Join(live, dayName(dayOf(day0)), dataFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := recA; cut < len(data); cut += 3 {
		dir := t.TempDir()
		p := filepath.Join(dir, dayName(dayOf(day0)))
		os.MkdirAll(p, 0o755)
		torn := append([]byte(nil), data[:cut]...)
		if cut > recA+recHeader {
			torn[len(torn)-1] ^= 0xff // garbage, not only a short write
		}
		os.WriteFile(filepath.Join(p, dataFile), torn, 0o644)
		s := openStore(t, dir)
		if got, err := s.GetTrace(context.Background(), a.TraceID); err != nil || len(got) != 1 {
			t.Fatalf("cut at %d: GetTrace(a) = %d spans, %v", cut, len(got), err)
		}
		if _, err := s.GetTrace(context.Background(), b.TraceID); !errors.Is(err, storage.ErrTraceNotFound) {
			t.Fatalf("cut at %d: GetTrace(b) = %v, want not found", cut, err)
		}
		write(t, s, b)
		if got, err := s.GetTrace(context.Background(), b.TraceID); err != nil || !reflect.DeepEqual(got, []model.Span{b}) {
			t.Fatalf("cut at %d: rewritten b = %+v, %v", cut, got, err)
		}
		s.Close()
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(0, day0).Add(3*24*time.Hour + time.Hour) // day0+3, 01:00
	s := openStore(t, dir, func(o *Options) {
		o.Retention = 48 * time.Hour
		o.now = func() time.Time { return now }
	})
	for d := int64(0); d < 4; d++ {
		write(t, s, span(uint64(d+1), 1, "svc", "op", day0+d*nsPerDay+5, 1))
	}
	if err := s.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	// Cutoff is day0+1 01:00: day0 ended before it and goes; day0+1 stays.
	for d := uint64(1); d <= 4; d++ {
		_, err := s.GetTrace(context.Background(), tid(d))
		if gone := errors.Is(err, storage.ErrTraceNotFound); gone != (d == 1) {
			t.Errorf("day %d: GetTrace err = %v", d-1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, dayName(dayOf(day0)))); !os.IsNotExist(err) {
		t.Errorf("day0 directory still exists: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestSetRetention shortens the retention of an open store: the days now
// past it go at once.
func TestSetRetention(t *testing.T) {
	now := time.Unix(0, day0).Add(3*24*time.Hour + time.Hour) // day0+3, 01:00
	s := openStore(t, t.TempDir(), func(o *Options) {
		o.Retention = 30 * 24 * time.Hour
		o.now = func() time.Time { return now }
	})
	for d := int64(0); d < 4; d++ {
		write(t, s, span(uint64(d+1), 1, "svc", "op", day0+d*nsPerDay+5, 1))
	}
	found := func() []uint64 {
		var ids []uint64
		for d := uint64(1); d <= 4; d++ {
			if _, err := s.GetTrace(context.Background(), tid(d)); err == nil {
				ids = append(ids, d)
			} else if !errors.Is(err, storage.ErrTraceNotFound) {
				t.Fatal(err)
			}
		}
		return ids
	}
	if err := s.SetRetention(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, want := found(), []uint64{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("traces after a 48h retention: %v; want %v", got, want)
	}
	if err := s.SetRetention(0); err != nil { // keeps everything
		t.Fatal(err)
	}
	if got, want := found(), []uint64{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("traces without retention: %v; want %v", got, want)
	}
}

func TestConcurrentWriteRead(t *testing.T) {
	s := openStore(t, t.TempDir())
	var wg sync.WaitGroup
	ctx := context.Background()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				tr := uint64(w*1000 + i)
				if err := s.Write(ctx, []model.Span{span(tr, 1, "svc", "op", day0+int64(i), 5), span(tr, 2, "db", "q", day0+int64(i)+1, 2)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := s.FindTraces(ctx, storage.TraceQuery{Service: "svc", Limit: 10}); err != nil {
					t.Error(err)
				}
				if _, err := s.GetTrace(ctx, tid(uint64(i))); err != nil && !errors.Is(err, storage.ErrTraceNotFound) {
					t.Error(err)
				}
				s.Services(ctx)
				s.Dependencies(ctx, day0+nsPerDay, 48*time.Hour)
			}
		}()
	}
	wg.Wait()
	got, _ := s.FindTraces(ctx, storage.TraceQuery{Service: "db"})
	if len(got) != 200 {
		t.Fatalf("got %d traces, want 200", len(got))
	}
	for _, tr := range got {
		if len(tr) != 2 {
			t.Fatalf("trace %s has %d spans, want 2", tr[0].TraceID, len(tr))
		}
	}
}

// TestBlocks writes traces larger than a block, interleaved in one batch,
// and checks every span comes back, also after reopening.
func TestBlocks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var batch []model.Span
	for i := 0; i < 300; i++ {
		for tr := uint64(1); tr <= 3; tr++ {
			sp := fullSpan()
			sp.TraceID, sp.SpanID, sp.StartTime = tid(tr), sid(uint64(i+1)), day0+int64(i)
			batch = append(batch, sp)
		}
	}
	write(t, s, batch...)
	check := func(s *Store) {
		t.Helper()
		for tr := uint64(1); tr <= 3; tr++ {
			got, err := s.GetTrace(context.Background(), tid(tr))
			if err != nil || len(got) != 300 {
				t.Fatalf("trace %d: got %d spans, %v; want 300", tr, len(got), err)
			}
			for i, sp := range got {
				want := fullSpan()
				want.TraceID, want.SpanID, want.StartTime = tid(tr), sid(uint64(i+1)), day0+int64(i)
				if !reflect.DeepEqual(sp, want) {
					t.Fatalf("trace %d span %d: got %+v, want %+v", tr, i, sp, want)
				}
			}
		}
	}
	check(s)
	if n := s.DiskBytes(); n > int64(len(batch))*200 {
		t.Errorf("%d bytes on disk for %d spans: blocks not compressed?", n, len(batch))
	}
	s.Close()
	check(openStore(t, dir))
}
