package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/config"
)

// runMetrics is `vigil bench metrics`: scrape ingestion and dashboard
// query latency of `vigil federation` beside the real Prometheus, on the
// same loopback targets, one after the other in one run.
func runMetrics(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench metrics", "Start loopback targets exposing the SDK's metrics (counters, classic histograms, gauges of several\n"+
		"services, grades and datacenters), then `vigil federation` and the real Prometheus as child processes, one after\n"+
		"the other, scraping them with the same configuration; report samples/s appended (each server's own\n"+
		"prometheus_tsdb_head_samples_appended_total), scrape durations, CPU and RSS, and with --bench.dashboard the\n"+
		"latency of the golden-signals dashboard's queries.")
	o := metricsBench{}
	fs.IntVar(&o.shape.targets, "bench.targets", 200, "loopback targets, each on its own port")
	fs.IntVar(&o.shape.series, "bench.series-per-target", 5000, "series each target exposes (rounded down to whole label sets of a counter and a 12-bucket histogram)")
	fs.IntVar(&o.shape.services, "bench.services", 20, "services the targets are instances of (grade = service % 4 + 1)")
	fs.IntVar(&o.shape.dcs, "bench.dcs", 3, "datacenters (the dc target label)")
	fs.DurationVar(&o.shape.interval, "bench.scrape-interval", 0, "scrape interval of both servers; 0 means 1s, or 15s with --bench.dashboard")
	fs.DurationVar(&o.duration, "bench.duration", time.Minute, "measuring window of the ingestion figures, after every series exists")
	fs.StringVar(&o.prometheus, "bench.prometheus", "/usr/bin/prometheus", "the Prometheus binary compared with")
	servers := fs.String("bench.servers", "vigil,prometheus", "which servers run, in this order: vigil, prometheus or both")
	fs.BoolVar(&o.together, "bench.together", false, "run the servers at the same time instead of one after the other: both then see the same load from the rest of the machine")
	fs.BoolVar(&o.rules, "bench.rules", true, "load the golden-signal rules into both (Vigil generates them; Prometheus gets the files `vigil rules` writes)")
	fs.BoolVar(&o.dashboard, "bench.dashboard", false, "after the ingestion figures, time the golden-signals dashboard's queries (over the rules' recorded series, or with --bench.rules=false over the back-filled ones alone)")
	fs.StringVar(&o.dashFile, "bench.dashboard-file", "deploy/grafana/dashboards/golden-signals.json", "the generated dashboard whose queries are timed")
	fs.IntVar(&o.queryRuns, "bench.query-runs", 20, "runs of each dashboard query per time range")
	fs.DurationVar(&o.history, "bench.backfill", 6*time.Hour, "history of the dashboard's recorded series remote-written before the first scrape; 0 writes none")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if o.shape.interval == 0 {
		o.shape.interval = map[bool]time.Duration{false: time.Second, true: 15 * time.Second}[o.dashboard]
	}
	if o.shape.targets < 1 || o.shape.services < 1 || o.shape.dcs < 1 || o.shape.series < 1 {
		return errors.New("--bench.targets, --bench.series-per-target, --bench.services and --bench.dcs must be positive")
	}
	if o.dashboard && !o.rules && o.history <= 0 {
		return errors.New("--bench.dashboard needs --bench.rules or --bench.backfill: the dashboard reads the recorded series")
	}
	for _, s := range strings.Split(*servers, ",") {
		if s != "vigil" && s != "prometheus" {
			return fmt.Errorf("--bench.servers %q: want vigil, prometheus or both, comma-separated", *servers)
		}
		o.servers = append(o.servers, s)
	}
	o.out = os.Stdout
	return o.run(ctx)
}

type metricsBench struct {
	shape                      metricsShape
	duration, history          time.Duration
	prometheus                 string
	servers                    []string
	rules, dashboard, together bool
	dashFile                   string
	queryRuns                  int
	out                        io.Writer
	queries                    []dashQuery
	ranges                     []time.Duration
	targets                    *metricsTargets
	rulesDir                   string
	expectedHeadSeries         int
	results                    []*metricsResult
}

// metricsResult holds one server's figures.
type metricsResult struct {
	name                     string
	load                     [2]string // load average before and after
	seriesAfter              time.Duration
	headSeries               float64
	samplesPerSec, cpuCores  float64
	cpuPerMillion            float64
	scrapeAvg, scrapeMax, up float64
	peakRSS                  int64
	backfilled               int
	dash                     []*latencies // by range
	rulesReadyAfter          time.Duration
}

func (b *metricsBench) run(ctx context.Context) error {
	if b.dashboard {
		var err error
		if b.queries, err = readDashboard(b.dashFile); err != nil {
			return err
		}
		b.ranges = []time.Duration{time.Hour, 6 * time.Hour}
	}
	dir, err := os.MkdirTemp("", "vigil-bench-metrics")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if b.rules {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		b.rulesDir = filepath.Join(dir, "rules")
		if out, err := runCmd(exe, "rules", "--out", b.rulesDir); err != nil {
			return fmt.Errorf("vigil rules: %w: %s", err, out)
		}
	}
	if b.targets, err = startTargets(b.shape); err != nil {
		return err
	}
	defer b.targets.Close()
	perTarget := b.shape.seriesPerTarget()
	// Each target also gets up and the scrape_* series.
	b.expectedHeadSeries = b.shape.targets * perTarget
	fmt.Fprintf(b.out, "# vigil bench metrics: %d targets × %d series = %d series (%d services, %d dcs), scrape interval %s, offered %.0f samples/s, rules %v, servers %s; %d cores (%s)\n\n",
		b.shape.targets, perTarget, b.expectedHeadSeries, b.shape.services, b.shape.dcs, b.shape.interval,
		float64(b.expectedHeadSeries)/b.shape.interval.Seconds(), b.rules, map[bool]string{false: "one after the other", true: "at the same time"}[b.together], runtime.NumCPU(), runtime.GOARCH)
	b.results = make([]*metricsResult, len(b.servers))
	if b.together {
		var wg sync.WaitGroup
		errs := make([]error, len(b.servers))
		for i, s := range b.servers {
			wg.Go(func() { b.results[i], errs[i] = b.runServer(ctx, s, filepath.Join(dir, s)) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	} else {
		b.results = b.results[:0]
		for i, s := range b.servers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := b.runServer(ctx, s, filepath.Join(dir, s))
			if err != nil {
				return err
			}
			b.results = append(b.results, r)
			if i < len(b.servers)-1 {
				// The figures so far, in case a later server fails.
				out := b.out
				b.out = os.Stderr
				b.report()
				b.out = out
			}
		}
	}
	b.report()
	return nil
}

// runServer starts one server on a fresh directory, has it scrape the
// targets and measures it; it stops the server before returning.
func (b *metricsBench) runServer(ctx context.Context, which, dir string) (r *metricsResult, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	sd := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(sd, []byte("[]\n"), 0o600); err != nil {
		return nil, err
	}
	var srv *metricsServer
	if which == "vigil" {
		srv, err = startVigilFederation(dir, benchPromConfig(b.shape.interval, sd), b.rules)
	} else {
		var rules []string
		if b.rules {
			rules = []string{filepath.Join(b.rulesDir, "*.yml")}
		}
		srv, err = startRealPrometheus(b.prometheus, dir, benchPromConfig(b.shape.interval, sd, rules...))
	}
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	r = &metricsResult{name: srv.name}
	r.load[0] = loadAvg()
	if b.dashboard && b.history > 0 {
		// Up to 6 minutes ago when the rules record the series from now on
		// (the rules' lookback then sees none of it and records nothing
		// older than a back-filled sample); up to now without the rules.
		end := time.Now().Add(-6 * time.Minute)
		if !b.rules {
			end = time.Now()
		}
		if r.backfilled, err = backfill(srv.addr, b.queries, b.shape, end, b.history); err != nil {
			return nil, fmt.Errorf("%s: %w", srv.name, err)
		}
	}
	// The targets appear: scraping starts.
	start := time.Now()
	if err := os.WriteFile(sd+".tmp", b.targets.fileSD(), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(sd+".tmp", sd); err != nil {
		return nil, err
	}
	progress := func(phase string) func() {
		return b.progressf(srv, phase)
	}
	p := progress("series")
	seriesWant := 0.99 * float64(b.expectedHeadSeries)
	v, ok := waitMetric(ctx, srv.addr, "prometheus_tsdb_head_series", seriesWant, time.Second)
	p()
	if !ok {
		return nil, fmt.Errorf("%s: %.0f head series, want %.0f", srv.name, v, seriesWant)
	}
	r.seriesAfter = time.Since(start)

	p = progress("ingest")
	a0, c0, t0 := srv.appended(), cpu(srv), time.Now()
	select {
	case <-ctx.Done():
		p()
		return nil, ctx.Err()
	case <-time.After(b.duration):
	}
	a1, c1, t1 := srv.appended(), cpu(srv), time.Now()
	p()
	dt := t1.Sub(t0).Seconds()
	r.samplesPerSec = (a1 - a0) / dt
	r.cpuCores = (c1 - c0) / dt
	r.cpuPerMillion = (c1 - c0) / ((a1 - a0) / 1e6)
	r.headSeries = metric(srv.addr, "prometheus_tsdb_head_series")
	r.scrapeAvg, _ = srv.instant(`avg(scrape_duration_seconds{job="bench"})`)
	r.scrapeMax, _ = srv.instant(`max(scrape_duration_seconds{job="bench"})`)
	r.up, _ = srv.instant(`sum(up{job="bench"})`)
	r.load[1] = loadAvg()

	if b.dashboard {
		if err := b.measureDashboard(ctx, srv, r, start); err != nil {
			return nil, err
		}
	}
	r.peakRSS, _ = srv.proc.PeakRSS()
	return r, nil
}

// measureDashboard waits until the rules recorded every level the
// dashboard reads, then times its queries over each range.
func (b *metricsBench) measureDashboard(ctx context.Context, srv *metricsServer, r *metricsResult, start time.Time) error {
	deadline := time.Now().Add(5 * time.Minute)
	for b.rules {
		n, err := srv.instant(`count(grade:vigil_http_requests:rate5m) + count(service_grade_dc:process_cpu_utilisation:ratio_rate5m)`)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: the golden rules recorded nothing in 5 minutes (%v)", srv.name, err)
		}
		time.Sleep(2 * time.Second)
	}
	r.rulesReadyAfter = time.Since(start)
	r.load[0] = r.load[0] + " → " + loadAvg()
	for _, rng := range b.ranges {
		l, err := measureDashboard(srv.addr, b.queries, rng, b.queryRuns)
		if err != nil {
			return fmt.Errorf("%s: %w", srv.name, err)
		}
		r.dash = append(r.dash, l)
	}
	r.load[1] = loadAvg()
	return nil
}

func cpu(s *metricsServer) float64 {
	v, _ := s.proc.CPUSeconds()
	return v
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// progressf prints a line every 5 seconds to stderr until stopped.
func (b *metricsBench) progressf(s *metricsServer, phase string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "bench metrics %s %s: %4.0fs head series %.0f, samples appended %.0f, load %s\n",
					s.name, phase, time.Since(start).Seconds(), metric(s.addr, "prometheus_tsdb_head_series"), s.appended(), loadAvg())
			}
		}
	}()
	return func() { close(done); <-finished }
}
