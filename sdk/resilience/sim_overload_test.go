package resilience

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

// event queue of the discrete-event simulations
type simEvent struct {
	at  time.Duration
	seq int
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || (q[i].at == q[j].at && q[i].seq < q[j].seq)
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simulator struct {
	now time.Duration
	seq int
	q   simQueue
}

func (s *simulator) at(t time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, simEvent{at: t, seq: s.seq, fn: fn})
}

func (s *simulator) run(until time.Duration) {
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(simEvent)
		if e.at > until {
			return
		}
		s.now = e.at
		e.fn()
	}
}

// overloadResult is per second of simulated time.
type overloadResult struct {
	offered  []float64 // new requests per second
	success  []float64 // % of the requests that arrived in that second and succeeded (any attempt)
	goodput  []float64 // answers per second that reached their caller in time
	attempts []float64 // attempts per second (with retries)
}

// simOverload: a server with 8 workers whose service time rises from 20 ms
// to 50 ms while the offered load rises from 50 to 200 requests per second
// (over ramp), then stays there; capacity at the end is 160 req/s. Clients
// time out after 1 s and retry up to 2 times (after a timeout at once,
// after a rejection with 50–100 ms backoff). Without the guard the server
// queues FIFO without limit and serves requests whose caller has gone;
// with it, a Guard (deadline propagated) rejects them early.
func simOverload(t *testing.T, guarded bool) overloadResult {
	const (
		workers  = 8
		ramp     = 30 * time.Second
		duration = 60 * time.Second
		timeout  = time.Second
		attempts = 3
	)
	rng := rand.New(rand.NewPCG(1, 2))
	frac := func(at time.Duration) float64 { return min(1, float64(at)/float64(ramp)) }
	service := func(at time.Duration) time.Duration {
		return 20*time.Millisecond + time.Duration(frac(at)*float64(30*time.Millisecond))
	}
	rate := func(at time.Duration) float64 { return 50 + 150*frac(at) }
	secs := int(duration/time.Second) + 6 // the run drains for 5 s after the arrivals end
	res := overloadResult{offered: make([]float64, secs), success: make([]float64, secs), goodput: make([]float64, secs), attempts: make([]float64, secs)}
	sec := func(at time.Duration) int { return min(int(at/time.Second), secs-1) }

	sim := &simulator{}
	base := time.Unix(1_800_000_000, 0)
	wall := func() time.Time { return base.Add(sim.now) }
	g, err := NewGuard(GuardConfig{MaxInflight: workers, MaxQueue: 64, QueueBudget: 300 * time.Millisecond, Name: "sim", Now: wall})
	if err != nil {
		t.Fatal(err)
	}

	type request struct {
		born time.Duration
		done bool
	}
	type attempt struct {
		r        *request
		start    time.Duration
		finished bool // the client has its outcome (answer, timeout or rejection)
	}
	// FIFO server without protection
	var fifo []*attempt
	busy := 0

	var startAttempt func(r *request, n int)
	clientFail := func(a *attempt, n int, backoff time.Duration) {
		if a.finished {
			return
		}
		a.finished = true
		if n < attempts {
			sim.at(sim.now+backoff, func() { startAttempt(a.r, n+1) })
		}
	}
	answer := func(a *attempt) {
		if a.finished || sim.now-a.start > timeout {
			return // the caller has gone: wasted work
		}
		a.finished = true
		res.goodput[sec(sim.now)]++
		if !a.r.done {
			a.r.done = true
			res.success[sec(a.r.born)]++
		}
	}
	var serveFIFO func()
	serveFIFO = func() {
		for busy < workers && len(fifo) > 0 {
			a := fifo[0]
			fifo = fifo[1:]
			busy++
			sim.at(sim.now+service(sim.now), func() {
				busy--
				answer(a)
				serveFIFO()
			})
		}
	}
	// requests waiting in the guard, in the order they queued: after each
	// Leave or Expire the ones it decided about are taken out
	type pending struct {
		w      *Waiter
		decide func(error)
	}
	var waiting []pending
	drain := func() {
		kept := waiting[:0]
		for _, p := range waiting {
			select {
			case err := <-p.w.Ready:
				p.decide(err)
			default:
				kept = append(kept, p)
			}
		}
		waiting = kept
	}
	serveGuarded := func(a *attempt) {
		started := wall()
		sim.at(sim.now+service(sim.now), func() {
			answer(a)
			g.Leave(wall(), started)
			drain()
		})
	}
	startAttempt = func(r *request, n int) {
		a := &attempt{r: r, start: sim.now}
		res.attempts[sec(sim.now)]++
		sim.at(sim.now+timeout, func() { clientFail(a, n, 0) })
		backoff := 50*time.Millisecond + time.Duration(rng.Int64N(int64(50*time.Millisecond)))
		if !guarded {
			fifo = append(fifo, a)
			serveFIFO()
			return
		}
		w, err := g.Enter(wall(), wall(), wall().Add(timeout), 1)
		switch {
		case err != nil:
			clientFail(a, n, backoff)
		case w == nil:
			serveGuarded(a)
		default:
			waiting = append(waiting, pending{w, func(err error) {
				if err != nil {
					clientFail(a, n, backoff)
					return
				}
				serveGuarded(a)
			}})
			// like Acquire: leave the queue at the waiter's limit
			sim.at(g.limit(w).Sub(base), func() {
				if g.Expire(wall(), w) {
					drain()
				}
			})
		}
	}
	// Poisson arrivals with a time-varying rate (thinning)
	var arrive func()
	arrive = func() {
		r := &request{born: sim.now}
		res.offered[sec(sim.now)]++
		startAttempt(r, 1)
		next := sim.now + time.Duration(rng.ExpFloat64()/200*float64(time.Second))
		for next < duration && rng.Float64() > rate(next)/200 {
			next += time.Duration(rng.ExpFloat64() / 200 * float64(time.Second))
		}
		if next < duration {
			sim.at(next, arrive)
		}
	}
	sim.at(0, arrive)
	sim.run(duration + 5*time.Second)
	cut := int(duration / time.Second)
	res.offered, res.success, res.goodput, res.attempts = res.offered[:cut], res.success[:cut], res.goodput[:cut], res.attempts[:cut]
	for i := range res.success {
		if res.offered[i] > 0 {
			res.success[i] = 100 * res.success[i] / res.offered[i]
		}
	}
	return res
}

// TestSimOverload reproduces the overload reference: without protection
// the success rate collapses once the offered load passes the capacity;
// with the guard the server keeps answering what it can within deadline.
func TestSimOverload(t *testing.T) {
	plain, guarded := simOverload(t, false), simOverload(t, true)
	// the last 20 s: 200 req/s offered, 50 ms service, 160 req/s capacity
	pS, gS := avg(plain.success, 40, 60), avg(guarded.success, 40, 60)
	pG, gG := avg(plain.goodput, 40, 60), avg(guarded.goodput, 40, 60)
	pA, gA := avg(plain.attempts, 40, 60), avg(guarded.attempts, 40, 60)
	t.Logf("last 20 s at 200 req/s (capacity 160): success without protection %.1f%% (%.0f answers/s in time, %.0f attempts/s), with the guard %.1f%% (%.0f answers/s, %.0f attempts/s); first 20 s: %.1f%% and %.1f%%",
		pS, pG, pA, gS, gG, gA, avg(plain.success, 0, 20), avg(guarded.success, 0, 20))
	if pS > 10 {
		t.Errorf("without protection: %.1f%% succeeded in the overload; want the collapse (< 10%%)", pS)
	}
	if gS < 75 || gG < 0.9*160 {
		t.Errorf("with the guard: %.1f%% succeeded, %.0f answers/s in time; want ≥ 75%% and ≥ 90%% of the 160 req/s capacity", gS, gG)
	}
	chart{file: "overload-success.svg", title: "Latency 20→50 ms, load 50→200 req/s, 1 s timeout, retrying clients", xLabel: "time (s)", yLabel: "requests that succeeded (%)",
		xMax: 60, yMax: 100, marks: []mark{{30, "200 req/s, 50 ms"}}, series: []series{
			{name: "no protection", color: "#d62728", pts: pts(plain.success)},
			{name: "guard", color: "#2ca02c", pts: pts(guarded.success)},
		}}.write(t)
	chart{file: "overload-load.svg", title: "Attempts sent and answers in time per second", xLabel: "time (s)", yLabel: "per second",
		xMax: 60, yMax: 700, series: []series{
			{name: "offered", color: "#555", dashed: true, pts: pts(plain.offered)},
			{name: "attempts, no prot.", color: "#d62728", dashed: true, pts: pts(plain.attempts)},
			{name: "in time, no prot.", color: "#d62728", pts: pts(plain.goodput)},
			{name: "attempts, guard", color: "#2ca02c", dashed: true, pts: pts(guarded.attempts)},
			{name: "in time, guard", color: "#2ca02c", pts: pts(guarded.goodput)},
		}}.write(t)
}
