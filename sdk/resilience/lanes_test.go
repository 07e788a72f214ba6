package resilience

import (
	"context"
	"errors"
	"testing"
)

func TestLanesOrderAndEviction(t *testing.T) {
	l, err := NewLanes[string](LanesConfig{Capacity: 4, Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	push := func(g int, v string, wantEvicted string) {
		t.Helper()
		out, ev, err := l.Push(g, v)
		if err != nil {
			t.Fatalf("Push(%d, %s) = %v", g, v, err)
		}
		if got := map[bool]string{true: out, false: ""}[ev]; got != wantEvicted {
			t.Fatalf("Push(%d, %s) evicted %q; want %q", g, v, got, wantEvicted)
		}
	}
	push(4, "a4", "")
	push(4, "b4", "")
	push(3, "c3", "")
	push(2, "d2", "")
	push(1, "e1", "b4") // full: the newest grade-4 item goes
	push(1, "f1", "a4")
	push(2, "g2", "c3")
	if _, _, err := l.Push(2, "h2"); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Push(2) on a queue of grades 1 and 2 = %v; want ErrQueueFull", err)
	}
	var got []string
	for {
		v, _, ok := l.TryPop()
		if !ok {
			break
		}
		got = append(got, v)
	}
	want := []string{"e1", "f1", "d2", "g2"}
	if len(got) != len(want) {
		t.Fatalf("popped %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("popped %v; want %v", got, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Pop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pop on an empty queue with a cancelled context = %v", err)
	}
}

func TestLanesPopWaits(t *testing.T) {
	l, _ := NewLanes[int](LanesConfig{Capacity: 100})
	done := make(chan int)
	go func() {
		v, _, _ := l.Pop(context.Background())
		done <- v
	}()
	l.Push(3, 7)
	if v := <-done; v != 7 {
		t.Fatalf("Pop = %d; want 7", v)
	}
	// many items, ring growth and wrap-around
	for i := range 50 {
		l.Push(1+i%4, i)
	}
	prev := 0
	for range 50 {
		_, g, ok := l.TryPop()
		if !ok || g < prev {
			t.Fatalf("TryPop grade %d after %d (ok %v)", g, prev, ok)
		}
		prev = g
	}
}
