package spool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/queue"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama (the Kafka integration tests) starts go-metrics' process-wide
		// ticker goroutine on first use and never stops it.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// batch is one Publish or forward seen by a test.
type batch struct{ key, value string }

func (b batch) String() string { return b.key + "=" + b.value }

// fakeDownstream is the downstream queue.Producer of unit tests: it records
// what it acknowledged and fails when fail says so.
type fakeDownstream struct {
	mu  sync.Mutex
	got []batch
	// tenants holds the tenant (auth.Tenant of the Publish context) of
	// each batch of got.
	tenants []string
	calls   map[string]int // Publish calls by value
	// fail, when set, is asked before each Publish; a non-nil error is
	// returned without recording the batch.
	fail func(b batch, call int) error
	// acked, when set, is called after a batch was recorded.
	acked func(b batch)
}

func (f *fakeDownstream) Publish(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := batch{key, string(value)}
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[b.value]++
	call, fail := f.calls[b.value], f.fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(b, call); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.got = append(f.got, b)
	f.tenants = append(f.tenants, auth.Tenant(ctx))
	acked := f.acked
	f.mu.Unlock()
	if acked != nil {
		acked(b)
	}
	return nil
}

func (f *fakeDownstream) setFail(fail func(b batch, call int) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

func (f *fakeDownstream) forwarded() []batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]batch(nil), f.got...)
}

// forwardedTenants returns the tenant of each batch of forwarded.
func (f *fakeDownstream) forwardedTenants() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tenants...)
}

func (f *fakeDownstream) callsOf(value string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[value]
}

var errDown = errors.New("downstream is down")

// alwaysFail is a fail function of a downstream that is down.
func alwaysFail(batch, int) error { return errDown }

// testConfig is a spool of the tests: its options and those of its log,
// a disk queue directory.
type testConfig struct {
	Options
	Dir          string
	MaxBytes     int64 // of the log; 0 for the disk queue's default
	SegmentBytes int64
}

// testOptions returns a spool in dir with fast retries, changed by mods.
func testOptions(dir string, mods ...func(*testConfig)) testConfig {
	cfg := testConfig{Options: DefaultOptions(), Dir: dir}
	cfg.RetryMin = time.Millisecond
	cfg.RetryMax = 10 * time.Millisecond
	cfg.MaxCoalesce = 1 // these tests count downstream messages as batches
	// An outage of the downstream ends within milliseconds in these tests.
	cfg.Breaker.OpenFor = 20 * time.Millisecond
	cfg.RetryWindow.Period = 20 * time.Millisecond
	for _, mod := range mods {
		mod(&cfg)
	}
	return cfg
}

// openSpool opens the spool of cfg, on disk queues, as the collector does.
func openSpool(cfg testConfig, down queue.Producer) (*Spool, error) {
	lanes, err := OpenLanes(cfg.Dir, func(dir string, grade int) (Log, error) {
		o := diskqueue.Options{Dir: dir, MaxBytes: cfg.MaxBytes, SegmentBytes: cfg.SegmentBytes, Logger: cfg.Logger}
		if grade == Grades {
			o.Registerer = cfg.Registerer
		}
		return diskqueue.Open(o)
	})
	if err != nil {
		return nil, err
	}
	return Open(cfg.Options, lanes, down)
}

var _ Log = (*diskqueue.Queue)(nil)

func mustOpen(tb testing.TB, cfg testConfig, down queue.Producer) *Spool {
	tb.Helper()
	s, err := openSpool(cfg, down)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func mustClose(tb testing.TB, c interface{ Close() error }) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
}

func mustPublish(tb testing.TB, s *Spool, b batch) {
	tb.Helper()
	if err := s.Publish(context.Background(), b.key, []byte(b.value)); err != nil {
		tb.Fatalf("Publish(%v): %v", b, err)
	}
}

// startRun runs s.Run in a goroutine and returns a function that stops it
// and checks that it returned nil.
func startRun(tb testing.TB, s *Spool) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				tb.Fatal("Run did not return within 30s of its context's end")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline that only a bug reaches.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// numbered returns n batches spread over keys, value "key/seq/" padded to
// a size that varies.
func numbered(keys []string, n int) []batch {
	var out []batch
	seq := map[string]int{}
	for i := range n {
		k := keys[i%len(keys)]
		out = append(out, batch{k, fmt.Sprintf("%s/%d/%s", k, seq[k], strings.Repeat("x", i*37%300))})
		seq[k]++
	}
	return out
}

// recordOverhead is what the disk queue adds to a record's tenant, key
// and value (docs/format/diskqueue.md).
const recordOverhead = 11

// spooledSize is what b, of the default tenant, takes in the spool and in
// its bytes gauge, as docs/format/spool.md says.
func spooledSize(bs ...batch) int64 { return tenantSpooledSize(auth.DefaultTenant, bs...) }

// tenantSpooledSize is spooledSize for batches of tenant.
func tenantSpooledSize(tenant string, bs ...batch) int64 {
	var n int64
	for _, b := range bs {
		n += int64(recordOverhead + len(tenant) + len(b.key) + prefixSize + len(b.value))
	}
	return n
}

// metricValue returns the value of a gauge, counter or histogram sample
// count of c.
func metricValue(tb testing.TB, c prometheus.Collector) float64 {
	tb.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		tb.Fatal(err)
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	tb.Fatalf("unexpected metric %v", &m)
	return 0
}

// checkBacklog checks the spooled gauges.
func checkBacklog(tb testing.TB, s *Spool, batches, bytes int64) {
	tb.Helper()
	if got := metricValue(tb, s.m.spooledBatches); got != float64(batches) {
		tb.Errorf("spooled batches gauge: got %v; want %d", got, batches)
	}
	if got := metricValue(tb, s.m.spooledBytes); got != float64(bytes) {
		tb.Errorf("spooled bytes gauge: got %v; want %d", got, bytes)
	}
	age := metricValue(tb, s.m.oldestAge)
	if batches == 0 && age != 0 {
		tb.Errorf("oldest batch age of an empty spool: got %v; want 0", age)
	}
	if batches > 0 && age <= 0 {
		tb.Errorf("oldest batch age with %d batches spooled: got %v; want more than 0", batches, age)
	}
}
