package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

// The flood: the collector publishes to disk queues paced to one
// publication per 3ms per signal, its capacity is made small by its flags
// — four requests publish at once, sixteen wait, and each service's fair
// budget is 1000 records per second — and one service (grade 4, it
// says none) sends ten times that budget, logs and spans, from eight
// clients at once, while a grade-1 service sends 200 log lines and 100
// spans per second, a request of each every 100ms. Checked: every line and span of the grade-1 service
// is answered 2xx and reaches the queue's consumer; the flooding service
// gets 429s with Retry-After, counted by service and grade; every record
// answered 2xx reaches the consumer (stored ≥ accepted). Reported, not
// asserted: the grade-1 service's latency from its request to the
// consumer, without and with the flood.
const (
	floodBudget  = 1000 // records per second per service
	floodClients = 8
	floodLines   = 40 // per logs request
	floodSpans   = 10 // per spans request
	floodEvery   = 40 * time.Millisecond
	steadyLines  = 20
	steadySpans  = 10
	steadyEvery  = 100 * time.Millisecond
	floodPace    = 3 * time.Millisecond // per publication to a queue
)

// pacedQueue is a disk queue that takes one publication at a time, each
// at least every: a queue slower than the flood, as a remote Kafka
// cluster may be (the embedded disk queue takes this flood whole).
type pacedQueue struct {
	q     *diskqueue.Queue
	every time.Duration
	mu    sync.Mutex
}

func (p *pacedQueue) Publish(ctx context.Context, key string, value []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	time.Sleep(p.every)
	return p.q.Publish(ctx, key, value)
}

func (p *pacedQueue) PublishBatch(ctx context.Context, records []queue.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	time.Sleep(p.every)
	return p.q.PublishBatch(ctx, records)
}

func (p *pacedQueue) MaxMessageBytes() int { return queue.MaxMessageBytes(p.q) }

type answer struct {
	sent time.Time
	took time.Duration
}

// floodRun is what the consumers saw and the clients were answered.
type floodRun struct {
	tc *overloadCollector

	mu       sync.Mutex
	sent     map[string]time.Time // steady id → when its request was sent
	seen     map[string]time.Time // every id → when the consumer read it
	accepted map[string]bool      // flood ids answered 2xx

	answered []answer // the grade-1 service's requests

	ready sync.WaitGroup // the flood's clients built their requests
	go_   chan struct{}  // closed to start the flood

	steadyRefused atomic.Int64
	floodOffered  atomic.Int64 // records
	floodRefused  atomic.Int64 // requests answered 429
	floodNoRetry  atomic.Int64 // 429s without Retry-After
	floodOther    atomic.Int64 // other answers
	seq           atomic.Uint64
}

func TestFloodKeepsGradeOneFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("the flood takes a few seconds")
	}
	tc := newTestCollectorWith(t, func(o *Options) {
		o.Overload = OverloadOptions{MaxInflight: 4, MaxQueue: 16, QueueBudget: 2 * time.Second,
			ServiceRate: floodBudget, ServiceBurst: floodBudget}
	}, func(q *diskqueue.Queue) queue.Producer { return &pacedQueue{q: q, every: floodPace} })
	fr := &floodRun{tc: tc, sent: map[string]time.Time{}, seen: map[string]time.Time{}, accepted: map[string]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	for _, q := range []*diskqueue.Queue{tc.q, tc.spans} {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			fr.consume(ctx, t, q, q == tc.spans)
		}()
	}
	defer func() {
		stop()
		consumers.Wait()
	}()

	// without the flood
	baseStart := time.Now()
	fr.steady(t, baseStart.Add(1500*time.Millisecond))
	baseEnd := time.Now()
	// with it
	fr.go_ = make(chan struct{})
	fr.ready.Add(floodClients)
	floodStart := time.Now().Add(2 * time.Second) // once the requests are built
	var clients sync.WaitGroup
	for i := range floodClients {
		clients.Add(1)
		go func() {
			defer clients.Done()
			fr.flood(t, i, floodStart, floodStart.Add(3*time.Second))
		}()
	}
	fr.ready.Wait()
	time.Sleep(time.Until(floodStart))
	floodStart = time.Now()
	close(fr.go_)
	fr.steady(t, floodStart.Add(3*time.Second))
	clients.Wait()
	floodEnd := time.Now()

	// every record answered 2xx reaches the consumer
	deadline := time.Now().Add(20 * time.Second)
	for !fr.allSeen() {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	var base, flooded []time.Duration
	missingSteady := 0
	for id, at := range fr.sent {
		seen, ok := fr.seen[id]
		switch {
		case !ok:
			missingSteady++
		case at.Before(baseEnd):
			base = append(base, seen.Sub(at))
		default:
			flooded = append(flooded, seen.Sub(at))
		}
	}
	var baseAns, floodAns []time.Duration
	for _, a := range fr.answered {
		if a.sent.Before(baseEnd) {
			baseAns = append(baseAns, a.took)
		} else {
			floodAns = append(floodAns, a.took)
		}
	}
	missingFlood, storedFlood := 0, 0
	for id := range fr.accepted {
		if _, ok := fr.seen[id]; !ok {
			missingFlood++
		}
	}
	for id := range fr.seen {
		if _, steady := fr.sent[id]; !steady {
			storedFlood++
		}
	}
	floodSecs := floodEnd.Sub(floodStart).Seconds()
	t.Logf("grade-1 service, %d lines and spans without the flood (%.1fs): latency to the queue's consumer p50 %v, p99 %v, max %v",
		len(base), baseEnd.Sub(baseStart).Seconds(), pct(base, 50), pct(base, 99), pct(base, 100))
	t.Logf("grade-1 service, %d lines and spans during the flood (%.1fs): latency p50 %v, p99 %v, max %v",
		len(flooded), floodSecs, pct(flooded, 50), pct(flooded, 99), pct(flooded, 100))
	t.Logf("grade-1 service's requests answered 2xx in: p50 %v, p99 %v without the flood; p50 %v, p99 %v with it",
		pct(baseAns, 50), pct(baseAns, 99), pct(floodAns, 50), pct(floodAns, 99))
	t.Logf("flooding service: offered %d records (%.0f/s, %.1f× its budget of %d/s), %d requests answered 429, %d records answered 2xx, %d stored",
		fr.floodOffered.Load(), float64(fr.floodOffered.Load())/floodSecs, float64(fr.floodOffered.Load())/floodSecs/floodBudget, floodBudget,
		fr.floodRefused.Load(), len(fr.accepted), storedFlood)
	shed := map[string]float64{}
	for _, signal := range []string{"logs", "spans"} {
		for _, reason := range []string{reasonBudget, "shed", "waited", "deadline"} {
			shed[signal+"/"+reason] = testutil.ToFloat64(tc.c.admission.shed.WithLabelValues(signal, "flood", "4", reason))
		}
	}
	t.Logf("vigil_collector_shed_records_total{service=\"flood\",grade=\"4\"} by signal/reason: %v", shed)

	if n := fr.steadyRefused.Load(); n > 0 {
		t.Errorf("the grade-1 service was refused %d times", n)
	}
	if missingSteady > 0 {
		t.Errorf("%d of the grade-1 service's %d lines and spans never reached the queue", missingSteady, len(fr.sent))
	}
	if fr.floodRefused.Load() == 0 {
		t.Error("the flooding service was never answered 429")
	}
	if n := fr.floodNoRetry.Load(); n > 0 {
		t.Errorf("%d answers 429 without Retry-After", n)
	}
	if n := fr.floodOther.Load(); n > 0 {
		t.Errorf("%d answers to the flooding service were neither 2xx nor 429", n)
	}
	if missingFlood > 0 {
		t.Errorf("%d of the flooding service's %d records answered 2xx never reached the queue", missingFlood, len(fr.accepted))
	}
	total := 0.0
	for _, v := range shed {
		total += v
	}
	if total == 0 {
		t.Error("no shed record of the flooding service counted")
	}
}

// pct returns the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(100 * time.Microsecond)
}

// consume reads q until ctx ends, noting when each record was read.
func (fr *floodRun) consume(ctx context.Context, t *testing.T, q *diskqueue.Queue, spans bool) {
	var recs []model.LogRecord
	var sps []model.Span
	for {
		m, err := q.Fetch(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		var ids []string
		if spans {
			sps, err = otlptraces.Unmarshal(sps[:0], m.Value)
			for _, s := range sps {
				ids = append(ids, s.Name)
			}
		} else {
			recs, err = otlplogs.Unmarshal(recs[:0], m.Value)
			for _, r := range recs {
				ids = append(ids, r.Message)
			}
		}
		if err != nil {
			t.Errorf("undecodable queue message: %v", err)
			return
		}
		fr.mu.Lock()
		for _, id := range ids {
			if _, ok := fr.seen[id]; !ok {
				fr.seen[id] = now
			}
		}
		fr.mu.Unlock()
		if err := q.Commit(context.Background(), m); err != nil {
			t.Errorf("commit: %v", err)
			return
		}
	}
}

func (fr *floodRun) allSeen() bool {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for id := range fr.sent {
		if _, ok := fr.seen[id]; !ok {
			return false
		}
	}
	for id := range fr.accepted {
		if _, ok := fr.seen[id]; !ok {
			return false
		}
	}
	return true
}

// request builds an OTLP request of n log lines or spans of service,
// whose messages or span names are its ids.
func (fr *floodRun) request(service string, grade, n int, spans bool) (path string, body []byte, ids []string) {
	seq := fr.seq.Add(1)
	now := time.Now().UnixNano()
	kind := "L"
	if spans {
		kind = "S"
	}
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-%s-%d-%d", service, kind, seq, i))
	}
	var err error
	if spans {
		out := make([]model.Span, n)
		for i := range out {
			s := &out[i]
			*s = model.Span{Service: service, Grade: grade, Name: ids[i], StartTime: now, Duration: 1000}
			binary.BigEndian.PutUint64(s.TraceID[8:], seq)
			binary.BigEndian.PutUint64(s.SpanID[:], seq<<16|uint64(i+1))
		}
		path = "/v1/traces"
		body, err = otlptraces.Marshal(out)
	} else {
		out := make([]model.LogRecord, n)
		for i := range out {
			out[i] = model.LogRecord{Service: service, Grade: grade, Message: ids[i], Timestamp: now}
		}
		path = "/v1/logs"
		body, err = otlplogs.Marshal(out)
	}
	if err != nil {
		panic(err)
	}
	return path, body, ids
}

func (fr *floodRun) post(path string, body []byte) (int, http.Header, error) {
	resp, err := http.Post(fr.tc.srv.URL+path, contentTypeProtobuf, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// steady sends the grade-1 service's lines and spans until end, each
// tick's requests without waiting for the previous answers; the requests
// are built before, so that building them does not compete with the
// collector.
func (fr *floodRun) steady(t *testing.T, end time.Time) {
	type req struct {
		path string
		body []byte
		ids  []string
	}
	var reqs [][2]req
	for range int(time.Until(end)/steadyEvery) + 1 {
		var r [2]req
		for i, spans := range []bool{false, true} {
			n := steadyLines
			if spans {
				n = steadySpans
			}
			r[i].path, r[i].body, r[i].ids = fr.request("checkout", 1, n, spans)
		}
		reqs = append(reqs, r)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(steadyEvery)
	defer tick.Stop()
	for i, now := 0, time.Now(); i < len(reqs) && now.Before(end); i, now = i+1, <-tick.C {
		for _, r := range reqs[i] {
			sent := time.Now()
			fr.mu.Lock()
			for _, id := range r.ids {
				fr.sent[id] = sent
			}
			fr.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, err := fr.post(r.path, r.body)
				took := time.Since(sent)
				fr.mu.Lock()
				fr.answered = append(fr.answered, answer{sent, took})
				fr.mu.Unlock()
				if err != nil || code != http.StatusOK {
					fr.steadyRefused.Add(1)
					t.Logf("grade-1 request answered %d %v", code, err)
				}
			}()
		}
	}
}

// flood is one of the flooding service's clients, until end; its
// requests are built before it starts.
func (fr *floodRun) flood(t *testing.T, client int, start, end time.Time) {
	type req struct {
		path string
		body []byte
		ids  []string
		n    int
	}
	var reqs []req
	for range int(end.Sub(start)/floodEvery) + 1 {
		for _, spans := range []bool{false, true} {
			n := floodLines
			if spans {
				n = floodSpans
			}
			path, body, ids := fr.request("flood", 0, n, spans)
			reqs = append(reqs, req{path, body, ids, n})
		}
	}
	fr.ready.Done()
	<-fr.go_
	next := start.Add(time.Duration(client) * floodEvery / floodClients)
	for i := 0; next.Before(end) && i+1 < len(reqs); i += 2 {
		time.Sleep(time.Until(next))
		next = next.Add(floodEvery)
		for _, r := range reqs[i : i+2] {
			fr.floodOffered.Add(int64(r.n))
			code, h, err := fr.post(r.path, r.body)
			switch {
			case err != nil:
				t.Errorf("flood request: %v", err)
				return
			case code == http.StatusOK:
				fr.mu.Lock()
				for _, id := range r.ids {
					fr.accepted[id] = true
				}
				fr.mu.Unlock()
			case code == http.StatusTooManyRequests:
				fr.floodRefused.Add(1)
				if h.Get("Retry-After") == "" {
					fr.floodNoRetry.Add(1)
				}
			default:
				fr.floodOther.Add(1)
			}
		}
	}
}
