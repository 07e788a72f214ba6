package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/config"
)

const benchSummary = "Measure Vigil on this machine: vigil bench logs, vigil bench distributed, vigil bench traces, vigil bench traces-distributed."

func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "distributed" {
		return runBenchDistributed(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "traces" {
		return runBenchTraces(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "traces-distributed" {
		return runBenchTracesDistributed(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "logs" {
		return fmt.Errorf("usage: vigil bench logs|distributed|traces|traces-distributed [flags]; see vigil bench logs --help")
	}
	fs := config.NewFlagSet("bench logs", "Start `vigil all-in-one` as a child process on a fresh data directory, push lines over HTTP\n"+
		"and through a tailed file, and report lines/s until queryable, peak RSS, bytes per line and query latencies.")
	lines := fs.Int("bench.lines", 1_000_000, "lines sent over HTTP (and written to the tailed file)")
	clients := fs.Int("bench.clients", 4, "concurrent HTTP clients")
	batch := fs.Int("bench.batch", 1000, "lines per HTTP request")
	fileLines := fs.Int("bench.file-lines", -1, "lines written to the tailed file; -1 means --bench.lines, 0 skips the file phase")
	dataDir := fs.String("bench.data-dir", "", "data directory of the child; empty means a temporary one, removed afterwards")
	queries := fs.Int("bench.query-runs", 20, "runs of each query for the latency figures")
	if err := config.Parse(fs, args[1:]); err != nil {
		return err
	}
	if *fileLines < 0 {
		*fileLines = *lines
	}
	b := &bencher{lines: *lines, clients: *clients, batch: *batch, fileLines: *fileLines, queryRuns: *queries}
	return b.run(ctx, *dataDir)
}

type bencher struct {
	lines, clients, batch, fileLines, queryRuns int

	collector, query string
	child            *exec.Cmd
	dir              string
	out              io.Writer
}

func (b *bencher) run(ctx context.Context, dataDir string) (err error) {
	b.out = os.Stdout
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "vigil-bench"); err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
	}
	b.dir = dataDir
	if err := b.startChild(); err != nil {
		return err
	}
	defer b.stopChild()

	fmt.Fprintf(b.out, "# vigil bench logs: %d lines over HTTP by %d clients, %d lines through a tailed file; %d cores (%s)\n\n",
		b.lines, b.clients, b.fileLines, runtime.NumCPU(), runtime.GOARCH)
	fmt.Fprintf(b.out, "| measure | value |\n|---|---|\n")
	accepted, queryable, err := b.httpPhase(ctx)
	if err != nil {
		return err
	}
	b.row("HTTP intake: lines/s accepted (200 OK)", fmt.Sprintf("%.0f", float64(b.lines)/accepted.Seconds()))
	b.row("HTTP intake → queryable: lines/s", fmt.Sprintf("%.0f", float64(b.lines)/queryable.Seconds()))
	if b.fileLines > 0 {
		d, err := b.filePhase(ctx)
		if err != nil {
			return err
		}
		b.row("file tailing → queryable: lines/s", fmt.Sprintf("%.0f", float64(b.fileLines)/d.Seconds()))
	}
	total := b.lines + b.fileLines
	if n, err := b.count(ctx, `{service=~"bench-.*"}`); err != nil || n != total {
		return fmt.Errorf("queryable lines: got %d, want %d (err %v)", n, total, err)
	}
	b.row("lines stored and counted by count_over_time", strconv.Itoa(total))
	rss, err := peakRSS(b.child.Process.Pid)
	if err != nil {
		return err
	}
	b.row("peak RSS of vigil all-in-one", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	size, err := dirSize(filepath.Join(b.dir, "logs"))
	if err != nil {
		return err
	}
	b.row("log store bytes on disk per line", fmt.Sprintf("%.1f", float64(size)/float64(total)))
	cpu, err := cpuSeconds(b.child.Process.Pid)
	if err == nil {
		b.row("CPU seconds of vigil all-in-one, whole run", fmt.Sprintf("%.1f", cpu))
	}
	// The needle of the middle 100,000 lines, and the service it went to.
	mid := b.lines / 100_000 / 2
	svc := fmt.Sprintf("bench-%d", (mid*100_000+50_000)%20)
	for _, q := range []struct{ name, q string }{
		{fmt.Sprintf("line filter `{service=%q} |= \"needle-%d\"` (rare), limit 100", svc, mid),
			fmt.Sprintf(`{service=%q} |= "needle-%d"`, svc, mid)},
		{fmt.Sprintf("label selector `{service=%q}`, limit 100, backward", svc), fmt.Sprintf(`{service=%q}`, svc)},
		{fmt.Sprintf("case-insensitive filter `{service=%q} |~ \"(?i)NEEDLE-%d\"`, limit 100", svc, mid),
			fmt.Sprintf(`{service=%q} |~ "(?i)NEEDLE-%d"`, svc, mid)},
	} {
		p50, p99, n, err := b.latency(ctx, q.q)
		if err != nil {
			return err
		}
		b.row(fmt.Sprintf("%s over %d lines: p50 / p99 (%d lines found)", q.name, total, n), fmt.Sprintf("%s / %s", p50, p99))
	}
	return nil
}

func (b *bencher) row(name, value string) { fmt.Fprintf(b.out, "| %s | %s |\n", name, value) }

func (b *bencher) startChild() error {
	var err error
	if b.collector, err = pickPort(); err != nil {
		return err
	}
	if b.query, err = pickPort(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "files"), 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{"all-in-one", "--data-dir", b.dir, "--log.level", "warn",
		"--collector.http.listen", b.collector, "--query.listen", b.query,
		"--collector.files", filepath.Join(b.dir, "files", "*.log"), "--collector.files.service", "bench-file"}, noTraceReceivers...)
	b.child = exec.Command(exe, args...)
	b.child.Stderr = os.Stderr
	if err := b.child.Start(); err != nil {
		return err
	}
	for i := 0; i < 300; i++ {
		if resp, err := http.Get("http://" + b.query + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("vigil all-in-one did not become ready")
}

func (b *bencher) stopChild() {
	_ = b.child.Process.Signal(syscall.SIGTERM)
	_, _ = b.child.Process.Wait()
}

func pickPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// benchLine appends line i: about 200 bytes of NDJSON, 20 services, 4
// levels, 8 hosts; a rare needle token every 100,000 lines.
func benchLine(dst []byte, i int, ts int64) []byte {
	levels := [...]string{"info", "info", "info", "warn", "error", "debug"}
	needle := ""
	if i%100_000 == 50_000 {
		needle = fmt.Sprintf(" needle-%d", i/100_000)
	}
	return fmt.Appendf(dst, `{"timestamp":%d,"service":"bench-%d","level":"%s","host":"h%d","message":"GET /api/v1/items/%d 200 %dms user=%d trace=%016x region=eu-west-%d%s"}`+"\n",
		ts, i%20, levels[i%len(levels)], i%8, i*7919%100000, i%997, i%50000, uint64(i)*0x9e3779b97f4a7c15, i%3, needle)
}

func (b *bencher) httpPhase(ctx context.Context) (accepted, queryable time.Duration, err error) {
	start := time.Now()
	base := start.Add(-30 * time.Minute).UnixNano()
	var next atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, b.clients)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.clients}}
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
				body = body[:0]
				for i := from; i < min(from+b.batch, b.lines); i++ {
					body = benchLine(body, i, base+int64(i))
				}
				for {
					resp, err := client.Post("http://"+b.collector+"/api/v1/logs", "application/x-ndjson", bytes.NewReader(body))
					if err != nil {
						errc <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
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
	wg.Wait()
	accepted = time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		stopProgress()
		return 0, 0, err
	}
	err = b.waitIndexed(ctx, int64(b.lines))
	stopProgress()
	return accepted, time.Since(start), err
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
	v, _ := scrape("http://"+b.collector+"/metrics", "vigil_ingester_indexed_records_total")
	return int64(v)
}

func (b *bencher) waitIndexed(ctx context.Context, want int64) error {
	deadline := time.Now().Add(30 * time.Minute)
	for b.indexed() < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("only %d of %d lines indexed", b.indexed(), want)
		}
		time.Sleep(20 * time.Millisecond)
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

func (b *bencher) count(ctx context.Context, sel string) (int, error) {
	v := url.Values{"query": {fmt.Sprintf("sum(count_over_time(%s[2h]))", sel)}}
	resp, err := http.Get("http://" + b.query + "/loki/api/v1/query?" + v.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("count query: %v", err)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.Atoi(s)
}

func (b *bencher) latency(ctx context.Context, q string) (p50, p99 time.Duration, found int, err error) {
	now := time.Now()
	v := url.Values{"query": {q}, "limit": {"100"}, "start": {strconv.FormatInt(now.Add(-2*time.Hour).UnixNano(), 10)}, "end": {strconv.FormatInt(now.UnixNano(), 10)}}
	var ds []time.Duration
	for i := 0; i < b.queryRuns; i++ {
		t0 := time.Now()
		resp, err := http.Get("http://" + b.query + "/loki/api/v1/query_range?" + v.Encode())
		if err != nil {
			return 0, 0, 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ds = append(ds, time.Since(t0))
		if resp.StatusCode != 200 {
			return 0, 0, 0, fmt.Errorf("query %s: %d %s", q, resp.StatusCode, body)
		}
		var r struct {
			Data struct {
				Result []struct {
					Values [][2]string `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, 0, 0, fmt.Errorf("query %s: %w", q, err)
		}
		found = 0
		for _, s := range r.Data.Result {
			found += len(s.Values)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	pct := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	return pct(0.5), pct(0.99), found, nil
}

// scrape returns the sum of a metric's samples on a /metrics page.
func scrape(u, name string) (float64, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum, sc.Err()
}

func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
