package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/config"
)

// runLogs is `vigil bench logs`: the all-in-one log path, end to end.
func runLogs(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench logs", "Start `vigil all-in-one` as a child process on a fresh data directory, push lines over HTTP\n"+
		"and through a tailed file, and report lines/s until queryable, peak RSS, bytes per line and query latencies.")
	lines := fs.Int("bench.lines", 1_000_000, "lines sent over HTTP (and written to the tailed file)")
	clients := fs.Int("bench.clients", 4, "concurrent HTTP clients")
	batch := fs.Int("bench.batch", 1000, "lines per HTTP request")
	fileLines := fs.Int("bench.file-lines", -1, "lines written to the tailed file; -1 means --bench.lines, 0 skips the file phase")
	dataDir := fs.String("bench.data-dir", "", "data directory of the child; empty means a temporary one, removed afterwards")
	queries := fs.Int("bench.query-runs", 20, "runs of each query for the latency figures")
	intake := fs.String("bench.intake", "ndjson", "how the HTTP phase sends: ndjson (POST /api/v1/logs) or loki-push (snappy protobuf to POST /loki/api/v1/push, as Promtail does)")
	secFlags := addSecurityFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if *fileLines < 0 {
		*fileLines = *lines
	}
	if *secFlags.mode != "off" && *fileLines > 0 {
		// Tailed files are the host's own (tenant default), read without a
		// key or TLS: nothing to compare, and invisible to the tenant's key.
		fmt.Fprintln(os.Stderr, "bench logs: --bench.security is not off: no file phase (tailed files are tenant default, read without key or TLS)")
		*fileLines = 0
	}
	in, ok := intakes[*intake]
	if !ok {
		return fmt.Errorf("--bench.intake %q: want ndjson or loki-push", *intake)
	}
	secDir, err := os.MkdirTemp("", "vigil-bench-security")
	if err != nil {
		return err
	}
	defer os.RemoveAll(secDir)
	modes, err := securityModes(*secFlags.mode, secDir)
	if err != nil {
		return err
	}
	if len(modes) > 1 && *dataDir != "" {
		return errors.New("--bench.data-dir: not with --bench.security=compare, which runs on fresh data directories")
	}
	rounds := 1
	if len(modes) > 1 {
		rounds = max(1, *secFlags.rounds)
	}
	results := map[*security][]throughput{}
	for r := 0; r < rounds; r++ {
		for _, sec := range modes {
			b := &bencher{lines: *lines, clients: *clients, batch: *batch, fileLines: *fileLines, queryRuns: *queries, intake: in, sec: sec,
				profile: profilePath(*secFlags.profile, sec, r), profileSeconds: *secFlags.profileSeconds}
			res, err := b.run(ctx, *dataDir)
			if err != nil {
				return fmt.Errorf("security %s: %w", sec.name, err)
			}
			results[sec] = append(results[sec], res)
		}
	}
	if len(modes) > 1 {
		printComparison(os.Stdout, fmt.Sprintf("vigil bench logs: %d lines over HTTP (%s) by %d clients", *lines, in.name, *clients), rounds, modes, results)
	}
	return nil
}

// logsFigures name what a run of `vigil bench logs` measured.
var logsFigures = [4]string{"HTTP intake: lines/s accepted", "HTTP intake → queryable: lines/s",
	"CPU seconds of vigil all-in-one per million lines (lower is better)",
	"CPU seconds of the load generator per million lines"}

type bencher struct {
	lines, clients, batch, fileLines, queryRuns int
	intake                                      intake
	// sec is how the daemon is secured; nil is open (securityOff).
	sec *security
	// profile is where the HTTP phase writes a CPU profile of the daemon
	// of profileSeconds; "" takes none.
	profile        string
	profileSeconds int

	collector, query string
	child            *childproc.Process
	dir              string
	out              io.Writer
	row              func(measure, value string)
}

// security returns how the daemon is secured.
func (b *bencher) security() *security {
	if b.sec == nil {
		return securityOff
	}
	return b.sec
}

func (b *bencher) run(ctx context.Context, dataDir string) (res throughput, err error) {
	b.out = os.Stdout
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "vigil-bench"); err != nil {
			return res, err
		}
		defer os.RemoveAll(dataDir)
	}
	b.dir = dataDir
	if err := b.startChild(); err != nil {
		return res, err
	}
	defer stop(b.child)

	fmt.Fprintf(b.out, "# vigil bench logs: %d lines over HTTP (%s) by %d clients, %d lines through a tailed file; security %s; %d cores (%s)\n\n",
		b.lines, b.intake.name, b.clients, b.fileLines, b.security().name, runtime.NumCPU(), runtime.GOARCH)
	b.row = table(b.out)
	cpu0, err := b.child.CPUSeconds()
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	accepted, queryable, err := b.httpPhase(ctx)
	self1 := selfCPU()
	if err != nil {
		return res, err
	}
	cpu1, err := b.child.CPUSeconds()
	if err != nil {
		return res, err
	}
	res = measured(b.lines, accepted, queryable, cpu1-cpu0, self1-self0, logsFigures)
	b.row(fmt.Sprintf("HTTP intake (%s): lines/s accepted (%d)", b.intake.name, b.intake.ok), fmt.Sprintf("%.0f", res.accepted))
	b.row(fmt.Sprintf("HTTP intake (%s) → queryable: lines/s", b.intake.name), fmt.Sprintf("%.0f", res.queryable))
	b.row("CPU seconds of vigil all-in-one per million lines, HTTP phase", fmt.Sprintf("%.1f", res.cpu))
	b.row("CPU seconds of the load generator per million lines, HTTP phase", fmt.Sprintf("%.1f", res.clientCPU))
	b.row("load average (1, 5, 15 min) after the HTTP phase", res.load)
	if b.fileLines > 0 {
		d, err := b.filePhase(ctx)
		if err != nil {
			return res, err
		}
		b.row("file tailing → queryable: lines/s", fmt.Sprintf("%.0f", float64(b.fileLines)/d.Seconds()))
	}
	total := b.lines + b.fileLines
	if n, err := b.count(ctx, `{service=~"bench-.*"}`); err != nil || n != total {
		return res, fmt.Errorf("queryable lines: got %d, want %d (err %v)", n, total, err)
	}
	b.row("lines stored and counted by count_over_time", strconv.Itoa(total))
	rss, err := b.child.PeakRSS()
	if err != nil {
		return res, err
	}
	b.row("peak RSS of vigil all-in-one", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	size, err := dirSize(filepath.Join(b.dir, "logs"))
	if err != nil {
		return res, err
	}
	b.row("log store bytes on disk per line", fmt.Sprintf("%.1f", float64(size)/float64(total)))
	cpu, err := b.child.CPUSeconds()
	if err == nil {
		b.row("CPU seconds of vigil all-in-one, whole run", fmt.Sprintf("%.1f", cpu))
	}
	err = b.queryLatencies(ctx, total)
	fmt.Fprintln(b.out)
	return res, err
}

func (b *bencher) startChild() error {
	var err error
	if b.collector, err = childproc.FreePort(); err != nil {
		return err
	}
	if b.query, err = childproc.FreePort(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "files"), 0o750); err != nil {
		return err
	}
	b.child, err = startAllInOne(b.security(), b.query, append([]string{"--data-dir", b.dir, "--log.level", "warn",
		"--collector.http.listen", b.collector, "--query.listen", b.query,
		"--collector.files", filepath.Join(b.dir, "files", "*.log"), "--collector.files.service", "bench-file"}, noTraceReceivers...)...)
	return err
}

// benchLine appends line i: about 200 bytes of NDJSON, 20 services, 4
// levels, 8 hosts; a rare needle token every 100,000 lines.
func benchLine(dst []byte, i int, ts int64) []byte {
	dst = fmt.Appendf(dst, `{"timestamp":%d,"service":"bench-%d","level":"%s","host":"h%d","message":"`, ts, i%20, benchLevel(i), i%8)
	return append(benchMessage(dst, i), "\"}\n"...)
}

func benchLevel(i int) string {
	return [...]string{"info", "info", "info", "warn", "error", "debug"}[i%6]
}

// benchMessage appends the message of line i.
func benchMessage(dst []byte, i int) []byte {
	needle := ""
	if i%100_000 == 50_000 {
		needle = fmt.Sprintf(" needle-%d", i/100_000)
	}
	return fmt.Appendf(dst, "GET /api/v1/items/%d 200 %dms user=%d trace=%016x region=eu-west-%d%s",
		i*7919%100000, i%997, i%50000, uint64(i)*0x9e3779b97f4a7c15, i%3, needle)
}

func (b *bencher) httpPhase(ctx context.Context) (accepted, queryable time.Duration, err error) {
	start := time.Now()
	base := start.Add(-30 * time.Minute).UnixNano()
	var next atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, b.clients)
	sec := b.security()
	client := &http.Client{Transport: sec.transport(b.clients)}
	url := sec.url(b.collector, b.intake.path)
	for c := 0; c < b.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for {
				from := int(next.Add(int64(b.batch))) - b.batch
				if from >= b.lines || ctx.Err() != nil {
					return
				}
				body = b.intake.encode(body[:0], from, min(from+b.batch, b.lines), base)
				for {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
					if err != nil {
						errc <- err
						return
					}
					req.Header.Set("Content-Type", b.intake.contentType)
					sec.authorize(req)
					resp, err := client.Do(req)
					if err != nil {
						errc <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close() // read to its end above
					if resp.StatusCode == b.intake.ok {
						break
					}
					if resp.StatusCode != 429 {
						errc <- fmt.Errorf("intake answered %d", resp.StatusCode)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				sent.Add(int64(min(from+b.batch, b.lines) - from))
			}
		}()
	}
	stopProgress := b.progress("http", func() (int64, int64) { return sent.Load(), b.indexed() })
	profiled := profileCPU(sec, b.collector, b.profileSeconds, b.profile)
	wg.Wait()
	accepted = time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		stopProgress()
		return 0, 0, errors.Join(err, profiled())
	}
	err = b.waitIndexed(ctx, int64(b.lines))
	queryable = time.Since(start)
	stopProgress()
	// The profile may outlast the load: it is awaited after the figures.
	return accepted, queryable, errors.Join(err, profiled())
}

func (b *bencher) filePhase(ctx context.Context) (time.Duration, error) {
	before := b.indexed()
	start := time.Now()
	f, err := os.Create(filepath.Join(b.dir, "files", "bench.log"))
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := start.Add(-20 * time.Minute).UnixNano()
	var line []byte
	for i := 0; i < b.fileLines; i++ {
		line = benchLine(line[:0], i, base+int64(i))
		if _, err := w.Write(line); err != nil {
			return 0, err
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return 0, err
	}
	stop := b.progress("file", func() (int64, int64) { return int64(b.fileLines), b.indexed() - before })
	defer stop()
	if err := b.waitIndexed(ctx, before+int64(b.fileLines)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// indexed reads the ingester's count of records the store accepted.
func (b *bencher) indexed() int64 {
	return int64(b.security().metric(b.collector, "vigil_ingester_indexed_records_total"))
}

func (b *bencher) waitIndexed(ctx context.Context, want int64) error {
	if v, ok := b.security().waitMetric(ctx, b.collector, "vigil_ingester_indexed_records_total", float64(want), 20*time.Millisecond); !ok {
		return fmt.Errorf("only %.0f of %d lines indexed", v, want)
	}
	return nil
}

// progress prints a line a second to stderr until stopped.
func (b *bencher) progress(phase string, f func() (sent, indexed int64)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s, i := f()
				fmt.Fprintf(os.Stderr, "bench %s: %4.0fs sent %d, indexed %d\n", phase, time.Since(start).Seconds(), s, i)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
