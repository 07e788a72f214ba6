package resilience

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func reason(err error) string {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestGuardStateMachine(t *testing.T) {
	clk := newFakeClock()
	g, err := NewGuard(GuardConfig{MaxInflight: 1, MaxQueue: 4, QueueBudget: 100 * time.Millisecond,
		ShedAt: [4]float64{1, 0.75, 0.5, 0.25}, Name: "g", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	none := time.Time{}
	// the slot is free: admitted at once
	if w, err := g.Enter(now, now, none, 4); w != nil || err != nil {
		t.Fatalf("first request: %v, %v; want admitted", w, err)
	}
	// queue shares: grade 4 up to 1 waiting, 3 up to 2, 2 up to 3, 1 up to 4
	w4, _ := g.Enter(now, now, none, 4)
	if _, err := g.Enter(now, now, none, 4); reason(err) != ReasonShed {
		t.Fatalf("grade 4 with 1 queued: %v; want shed", err)
	}
	w3, _ := g.Enter(now, now, none, 3)
	w2, _ := g.Enter(now, now, now.Add(30*time.Millisecond), 2)
	if _, err := g.Enter(now, now, none, 3); reason(err) != ReasonShed {
		t.Fatalf("grade 3 with 3 queued: %v; want shed", err)
	}
	w1, _ := g.Enter(now, now, none, 1)
	if _, err := g.Enter(now, now, none, 1); reason(err) != ReasonShed {
		t.Fatalf("grade 1 with a full queue: %v; want shed", err)
	}
	if w4 == nil || w3 == nil || w2 == nil || w1 == nil {
		t.Fatal("a request that should wait got no Waiter")
	}
	// the first request ends after 40ms: grade 1 goes first, not grade 4
	clk.Add(40 * time.Millisecond)
	g.Leave(clk.Now(), now)
	if err := <-w1.Ready; err != nil {
		t.Fatalf("grade 1 waiter: %v; want admitted", err)
	}
	// 40ms later: grade 2's deadline has passed, it is rejected unserved;
	// grade 3 is served
	clk.Add(40 * time.Millisecond)
	g.Leave(clk.Now(), now.Add(40*time.Millisecond))
	if err := <-w2.Ready; reason(err) != ReasonDeadline {
		t.Fatalf("grade 2 past its deadline: %v; want deadline", err)
	}
	if err := <-w3.Ready; err != nil {
		t.Fatalf("grade 3: %v; want admitted", err)
	}
	// 30ms later grade 4 has waited 110ms > the 100ms budget
	clk.Add(30 * time.Millisecond)
	g.Leave(clk.Now(), now.Add(80*time.Millisecond))
	if err := <-w4.Ready; reason(err) != ReasonWaited {
		t.Fatalf("grade 4 after 110ms: %v; want waited", err)
	}
	// already too old on arrival (X-Request-Start of a proxy)
	if _, err := g.Enter(clk.Now(), clk.Now().Add(-time.Second), none, 1); reason(err) != ReasonWaited {
		t.Fatalf("request that arrived 1s ago: %v; want waited", err)
	}
	// the service time is about 40ms: a deadline 10ms away cannot be met
	if _, err := g.Enter(clk.Now(), clk.Now(), clk.Now().Add(10*time.Millisecond), 1); reason(err) != ReasonDeadline {
		t.Fatalf("deadline 10ms away, 40ms service: %v; want deadline", err)
	}
	if v := testutil.ToFloat64(g.rejected.WithLabelValues("4", ReasonShed)); v != 1 {
		t.Errorf("rejected{grade=4,reason=shed} = %v; want 1", v)
	}
	if v := testutil.ToFloat64(g.admitted[1]); v != 1 {
		t.Errorf("admitted{grade=1} = %v; want 1", v)
	}
	// the queue is empty; a waiter whose caller gives up leaves it
	clk.Add(time.Second)
	n := clk.Now()
	if w, err := g.Enter(n, n, none, 1); w != nil || err != nil {
		t.Fatalf("on an idle guard: %v, %v; want admitted", w, err)
	}
	if w, err := g.Enter(n, n, none, 1); w == nil || err != nil {
		t.Fatalf("with the slot busy: %v, %v; want a waiter", w, err)
	} else if !g.Expire(n, w) || reason(<-w.Ready) != ReasonDeadline || g.Expire(n, w) {
		t.Fatal("Expire of a queued waiter did not reject it exactly once")
	}
}

func TestGuardAcquire(t *testing.T) {
	g, _ := NewGuard(GuardConfig{MaxInflight: 1, QueueBudget: 50 * time.Millisecond, Name: "a"})
	ctx := context.Background()
	started, err := g.Acquire(ctx, 1, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// the slot is held: a second request runs out of its queue budget
	if _, err := g.Acquire(ctx, 1, time.Time{}); reason(err) != ReasonWaited {
		t.Fatalf("Acquire behind a held slot: %v; want waited", err)
	}
	g.Release(started)
	// a patient guard (no flake on a loaded machine): a waiter gets the
	// slot Release frees
	g, _ = NewGuard(GuardConfig{MaxInflight: 1, QueueBudget: time.Minute, Name: "b"})
	started, _ = g.Acquire(ctx, 1, time.Time{})
	done := make(chan error)
	go func() {
		s, err := g.Acquire(ctx, 2, time.Time{})
		if err == nil {
			g.Release(s)
		}
		done <- err
	}()
	for testutil.ToFloat64(g.queuedG) == 0 {
		time.Sleep(time.Millisecond)
	}
	g.Release(started)
	if err := <-done; err != nil {
		t.Fatalf("waiter after Release: %v; want admitted", err)
	}
	// a waiter whose caller gives up leaves the queue; the slot stays usable
	started, _ = g.Acquire(ctx, 1, time.Time{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		for testutil.ToFloat64(g.queuedG) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := g.Acquire(cctx, 1, time.Time{}); err == nil {
		t.Fatal("Acquire whose context was cancelled while queued succeeded")
	}
	g.Release(started)
	if s, err := g.Acquire(ctx, 1, time.Time{}); err != nil {
		t.Fatalf("Acquire on an idle guard: %v", err)
	} else {
		g.Release(s)
	}
	if v := testutil.ToFloat64(g.inflightG); v != 0 {
		t.Fatalf("inflight %v after every request left; want 0", v)
	}
}
