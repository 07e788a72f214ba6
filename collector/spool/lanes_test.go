package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/sdk/resilience"
)

// gradedBatch is batch seq of grade g: key "g<g>", value "g<g>/<seq>/…".
func gradedBatch(g, seq int) batch {
	key := fmt.Sprintf("g%d", g)
	return batch{key, fmt.Sprintf("%s/%d/%s", key, seq, strings.Repeat("z", seq*41%200))}
}

func gradeOf(tb testing.TB, b batch) int {
	tb.Helper()
	g, err := strconv.Atoi(strings.TrimPrefix(b.key, "g"))
	if err != nil {
		tb.Fatalf("batch %v is not one of gradedBatch", b)
	}
	return g
}

func publishGraded(tb testing.TB, s *Spool, g int, b batch) {
	tb.Helper()
	if err := s.Publish(queue.WithGrade(context.Background(), g), b.key, []byte(b.value)); err != nil {
		tb.Fatalf("Publish(%v) of grade %d: %v", b, g, err)
	}
}

// TestBacklogDrainsByGrade spools batches of the four grades, interleaved,
// while the downstream is down, and checks that once it is back every
// batch is forwarded once, grade 1 first and grade 4 last, each grade's in
// the order it was spooled.
func TestBacklogDrainsByGrade(t *testing.T) {
	const perGrade = 60
	down := &fakeDownstream{fail: alwaysFail}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	startRun(t, s)
	var want [5][]batch
	for i := range 4 * perGrade {
		g := 4 - i%4 // grade 4 first
		b := gradedBatch(g, i/4)
		publishGraded(t, s, g, b)
		want[g] = append(want[g], b)
	}
	waitFor(t, "forwards refused", func() bool { return metricValue(t, s.m.forwardErrors.WithLabelValues(reasonError)) >= 3 })
	for g := 1; g <= 4; g++ {
		if got := metricValue(t, s.m.laneBatches[g-1]); got != perGrade {
			t.Errorf("lane_batches{grade=%d} during the outage: got %v; want %d (a refused round still counts)", g, got, perGrade)
		}
	}
	down.setFail(nil)
	waitFor(t, "empty backlog", func() bool { b, _ := s.backlog.snapshot(); return b == 0 })
	got := down.forwarded()
	var all []batch
	for g := 1; g <= 4; g++ {
		all = append(all, want[g]...)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("forwarded %d batches, first difference at %d: %v; want the %d spooled, grade 1's first, each grade's in order",
			len(got), firstDiff(got, all), got[min(firstDiff(got, all), len(got)-1)], len(all))
	}
	checkBacklog(t, s, 0, 0)
}

// TestBetterGradeOvertakesRefusedRound: while the downstream refuses a
// round of grade 4, a grade-1 batch published meanwhile goes first once
// the downstream is back, and the refused round follows, not skipped.
func TestBetterGradeOvertakesRefusedRound(t *testing.T) {
	down := &fakeDownstream{fail: alwaysFail}
	s := mustOpen(t, testOptions(t.TempDir()), down)
	defer mustClose(t, s)
	startRun(t, s)
	low := gradedBatch(4, 0)
	publishGraded(t, s, 4, low)
	waitFor(t, "the grade-4 batch refused", func() bool { return down.callsOf(low.value) >= 2 })
	high := gradedBatch(1, 0)
	publishGraded(t, s, 1, high)
	down.setFail(nil)
	waitFor(t, "both forwarded", func() bool { return len(down.forwarded()) == 2 })
	if got, want := down.forwarded(), []batch{high, low}; !slices.Equal(got, want) {
		t.Errorf("forwarded %v; want %v", got, want)
	}
}

// TestOpenLanesLayout: grade 4 (and unknown grades) live in the spool
// directory itself, where the single-log release kept every batch; grades
// 1 to 3 in a directory each under it.
func TestOpenLanesLayout(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir), &fakeDownstream{})
	for g := 0; g <= 5; g++ {
		publishGraded(t, s, g, gradedBatch(g, 0))
	}
	mustClose(t, s)
	segments := func(d string) int {
		m, err := filepath.Glob(filepath.Join(d, "*.seg"))
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	for g := 1; g <= 3; g++ {
		if _, err := os.Stat(filepath.Join(dir, "grade-"+strconv.Itoa(g))); err != nil || segments(LaneDir(dir, g)) == 0 {
			t.Errorf("grade %d: no segments in %s (%v)", g, LaneDir(dir, g), err)
		}
	}
	if LaneDir(dir, 4) != dir || LaneDir(dir, 0) != dir || segments(dir) == 0 {
		t.Errorf("grade 4 and unknown grades: want segments in the spool directory %s itself", dir)
	}
	// Reopened, the spool counts all six and forwards them by grade.
	down := &fakeDownstream{}
	s = mustOpen(t, testOptions(dir), down)
	defer mustClose(t, s)
	if b, _ := s.backlog.snapshot(); b != 6 {
		t.Errorf("reopened spool counts %d batches; want 6", b)
	}
	startRun(t, s)
	waitFor(t, "all forwarded", func() bool { return len(down.forwarded()) == 6 })
	var grades []int
	for _, b := range down.forwarded() {
		grades = append(grades, gradeOf(t, b))
	}
	// Grades 0 and 5 are unknown: grade 4's lane, in publish order.
	if want := []int{1, 2, 3, 0, 4, 5}; !slices.Equal(grades, want) {
		t.Errorf("forwarded grades %v; want %v", grades, want)
	}
}

// TestBreakerStopsCalls: after ConsecutiveFailures refused forwards the
// breaker opens and the downstream is not called again while it is open.
func TestBreakerStopsCalls(t *testing.T) {
	down := &fakeDownstream{fail: alwaysFail}
	cfg := testOptions(t.TempDir())
	cfg.Breaker = resilience.BreakerConfig{ConsecutiveFailures: 3, OpenFor: time.Hour}
	cfg.RetryWindow.Period = time.Millisecond // the window grants every retry
	s := mustOpen(t, cfg, down)
	defer mustClose(t, s)
	startRun(t, s)
	b := batch{"k", "v"}
	mustPublish(t, s, b)
	waitFor(t, "breaker open", func() bool { return s.breaker.State() == resilience.Open })
	calls := down.callsOf(b.value)
	time.Sleep(100 * time.Millisecond) // some 10 backoff periods of RetryMax
	if got := down.callsOf(b.value); got != 3 || calls != 3 {
		t.Errorf("downstream calls: %d when the breaker opened, %d later; want 3 (ConsecutiveFailures), then none", calls, got)
	}
	checkBacklog(t, s, 1, spooledSize(b))
}

// TestRetryWindowBoundsRetries: with the downstream down, the adaptive
// retry window grants about one retry per period, however short the
// backoff.
func TestRetryWindowBoundsRetries(t *testing.T) {
	down := &fakeDownstream{fail: alwaysFail}
	cfg := testOptions(t.TempDir())
	cfg.Breaker = resilience.BreakerConfig{ConsecutiveFailures: 1 << 30, MinRequests: 1 << 30}
	cfg.RetryWindow.Period = 200 * time.Millisecond
	s := mustOpen(t, cfg, down)
	defer mustClose(t, s)
	b := batch{"k", "v"}
	mustPublish(t, s, b)
	start := time.Now()
	stop := startRun(t, s)
	time.Sleep(time.Second)
	stop()
	periods := int(time.Since(start)/cfg.RetryWindow.Period) + 2
	// The backoff alone (1 to 10 ms) would make a hundred calls or more.
	if got := down.callsOf(b.value); got < 2 || got > 1+periods {
		t.Errorf("downstream calls in %v: %d; want the first and at most one retry per %v period (%d)",
			time.Since(start).Round(time.Millisecond), got, cfg.RetryWindow.Period, 1+periods)
	}
}
