package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// metricsShape is what the loopback targets of `vigil bench metrics`
// expose: series of the SDK's metric names (sdk/metrics.go) for services
// of every grade, in several datacenters.
type metricsShape struct {
	targets, series, services, dcs int
	interval                       time.Duration
}

// benchBuckets are the SDK's default classic buckets (sdk/config.go).
var benchBuckets = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}

// benchCum is the share of requests at or under each bucket.
var benchCum = []float64{.05, .15, .35, .6, .8, .9, .95, .98, .99, .995, .999, 1}

// fixedSeries are the series of a target besides its request metrics:
// the four in-flight gauges and the four process and runtime metrics the
// golden process rules read.
const fixedSeries = 8

// seriesPerCombo: a request counter, and a histogram of 12 buckets, _sum
// and _count.
const seriesPerCombo = 1 + 12 + 2 // len(benchBuckets) = 12

// combos is how many label sets of request metrics a target has.
func (s metricsShape) combos() int { return max(1, (s.series-fixedSeries)/seriesPerCombo) }

// seriesPerTarget is the number of series a target really exposes.
func (s metricsShape) seriesPerTarget() int { return fixedSeries + s.combos()*seriesPerCombo }

// service returns the service, grade and datacenter of target t.
func (s metricsShape) service(t int) (service, grade, dc string) {
	svc := t % s.services
	return fmt.Sprintf("svc-%d", svc), strconv.Itoa(svc%4 + 1), fmt.Sprintf("dc-%d", (t/s.services)%s.dcs+1)
}

// requestFamily is one of the SDK's request metric pairs (counter and
// duration histogram) and its in-flight gauge.
type requestFamily struct {
	counter, histogram, inflight string
	labels                       func(i int) string // the combo's own labels
}

var requestFamilies = []requestFamily{
	{"vigil_http_requests_total", "vigil_http_request_duration_seconds", "vigil_http_inflight_requests", func(i int) string {
		return fmt.Sprintf(`route="/api/v1/items/%d",method="%s",code="%s"`, i/4, [...]string{"GET", "POST", "PUT", "DELETE"}[i%4], benchCode(i))
	}},
	{"vigil_http_client_requests_total", "vigil_http_client_request_duration_seconds", "vigil_http_client_inflight_requests", func(i int) string {
		return fmt.Sprintf(`peer="svc-%d:8080",method="GET",code="%s"`, i, benchCode(i))
	}},
	{"vigil_grpc_requests_total", "vigil_grpc_request_duration_seconds", "vigil_grpc_inflight_requests", func(i int) string {
		return fmt.Sprintf(`method="/bench.v1.Items/Method%d",code="%s"`, i, [...]string{"OK", "OK", "OK", "NotFound", "Unavailable"}[i%5])
	}},
	{"vigil_grpc_client_requests_total", "vigil_grpc_client_request_duration_seconds", "vigil_grpc_client_inflight_requests", func(i int) string {
		return fmt.Sprintf(`method="/bench.v1.Stock/Method%d",code="%s"`, i, [...]string{"OK", "OK", "OK", "DeadlineExceeded"}[i%4])
	}},
}

func benchCode(i int) string {
	switch {
	case i%10 == 9:
		return "500"
	case i%7 == 6:
		return "404"
	}
	return "200"
}

// family returns which request family combo i belongs to: half HTTP
// server, the rest split between HTTP client, gRPC server and gRPC client.
func family(i int) int { return [...]int{0, 0, 0, 0, 1, 2, 2, 3}[i%8] }

// exposition renders the text exposition of service svc at tick (scrapes
// since the epoch): the same for every instance of the service; counters
// grow with tick.
func (s metricsShape) exposition(dst []byte, svc, grade string, tick int64) []byte {
	n := s.combos()
	base := fmt.Sprintf(`service="%s",grade="%s"`, svc, grade)
	for f, fam := range requestFamilies {
		dst = fmt.Appendf(dst, "# HELP %s Requests.\n# TYPE %s counter\n", fam.counter, fam.counter)
		for c := 0; c < n; c++ {
			if family(c) == f {
				dst = fmt.Appendf(dst, "%s{%s,%s} ", fam.counter, base, fam.labels(c))
				dst = strconv.AppendInt(dst, requestCount(c, tick), 10)
				dst = append(dst, '\n')
			}
		}
		dst = fmt.Appendf(dst, "# HELP %s Request duration.\n# TYPE %s histogram\n", fam.histogram, fam.histogram)
		for c := 0; c < n; c++ {
			if family(c) != f {
				continue
			}
			lbl, count := fam.labels(c), requestCount(c, tick)
			for j, le := range benchBuckets {
				dst = fmt.Appendf(dst, "%s_bucket{%s,%s,le=\"%s\"} ", fam.histogram, base, lbl, le)
				dst = strconv.AppendInt(dst, int64(float64(count)*benchCum[j]), 10)
				dst = append(dst, '\n')
			}
			dst = fmt.Appendf(dst, "%s_sum{%s,%s} ", fam.histogram, base, lbl)
			dst = strconv.AppendFloat(dst, float64(count)*0.087, 'g', -1, 64)
			dst = fmt.Appendf(dst, "\n%s_count{%s,%s} ", fam.histogram, base, lbl)
			dst = strconv.AppendInt(dst, count, 10)
			dst = append(dst, '\n')
		}
		dst = fmt.Appendf(dst, "# HELP %s In flight.\n# TYPE %s gauge\n%s{%s} %d\n", fam.inflight, fam.inflight, fam.inflight, base, tick%7)
	}
	return fmt.Appendf(dst, "# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n"+
		"# HELP process_resident_memory_bytes RSS.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n"+
		"# HELP go_memstats_heap_inuse_bytes Heap.\n# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes %d\n"+
		"# HELP go_sched_gomaxprocs_threads GOMAXPROCS.\n# TYPE go_sched_gomaxprocs_threads gauge\ngo_sched_gomaxprocs_threads 2\n",
		float64(tick)*0.37, 60_000_000+tick%50*100_000, 30_000_000+tick%30*100_000)
}

// requestCount is the request counter of combo c at tick: a few requests
// a scrape, errors included.
func requestCount(c int, tick int64) int64 { return tick*int64(c%5+1) + int64(c) }

// metricsTargets are the loopback exposition endpoints.
type metricsTargets struct {
	shape   metricsShape
	addrs   []string
	servers []*http.Server
	wg      sync.WaitGroup

	mu     sync.Mutex
	bodies map[string]cachedBody // by service
}

type cachedBody struct {
	tick int64
	body []byte
}

// startTargets starts shape.targets HTTP servers on 127.0.0.1, each on its
// own port, serving /metrics.
func startTargets(shape metricsShape) (*metricsTargets, error) {
	ts := &metricsTargets{shape: shape, bodies: map[string]cachedBody{}}
	for t := 0; t < shape.targets; t++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(err, ts.Close())
		}
		svc, grade, _ := shape.service(t)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write(ts.body(svc, grade))
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		ts.addrs, ts.servers = append(ts.addrs, l.Addr().String()), append(ts.servers, srv)
		ts.wg.Go(func() { _ = srv.Serve(l) })
	}
	return ts, nil
}

// body returns the service's exposition at the current tick, rendered once
// per tick for all its instances.
func (ts *metricsTargets) body(svc, grade string) []byte {
	tick := time.Now().UnixNano() / int64(ts.shape.interval)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if b, ok := ts.bodies[svc]; ok && b.tick == tick {
		return b.body
	}
	b := ts.shape.exposition(make([]byte, 0, 160*ts.shape.series), svc, grade, tick)
	ts.bodies[svc] = cachedBody{tick, b}
	return b
}

// fileSD is the file_sd_configs content listing the targets, grouped by
// datacenter (the dc target label).
func (ts *metricsTargets) fileSD() []byte {
	byDC := map[string][]string{}
	var dcs []string
	for t, a := range ts.addrs {
		_, _, dc := ts.shape.service(t)
		if byDC[dc] == nil {
			dcs = append(dcs, dc)
		}
		byDC[dc] = append(byDC[dc], strconv.Quote(a))
	}
	b := []byte("[")
	for i, dc := range dcs {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "\n{\"labels\":{\"dc\":%q},\"targets\":[", dc)
		for j, a := range byDC[dc] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, a...)
		}
		b = append(b, "]}"...)
	}
	return append(b, "\n]\n"...)
}

// Close stops the targets.
func (ts *metricsTargets) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for _, s := range ts.servers {
		err = errors.Join(err, s.Shutdown(ctx))
	}
	ts.wg.Wait()
	return err
}
