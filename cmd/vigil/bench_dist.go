package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logsjson"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// runBenchDistributed measures the distributed path on real Kafka and
// Elasticsearch: collector HTTP→Kafka and file→Kafka, ingester
// Kafka→Elasticsearch against a direct bulk load of the same documents,
// and the collector's memory while Kafka is unreachable.
func runBenchDistributed(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench distributed", "Start `vigil collector` and `vigil ingester` as child processes against real Kafka and\n"+
		"Elasticsearch, and report the rates of each stage, the direct-bulk ceiling, and the collector's\n"+
		"peak RSS during a Kafka outage (a collector pointed at an unreachable broker).")
	lines := fs.Int("bench.lines", 200_000, "lines sent over HTTP, and again through a tailed file")
	clients := fs.Int("bench.clients", 4, "concurrent HTTP clients")
	outage := fs.Duration("bench.outage", 60*time.Second, "length of the Kafka outage phase; 0 skips it")
	outageRate := fs.Int("bench.outage-rate", 20_000, "lines/s sent during the outage")
	kf := kafka.RegisterFlags(fs)
	ef := addESFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	dir, run, cleanup, err := distSetup(kf, ef)
	if err != nil {
		return err
	}
	defer cleanup()
	topic, prefix := "vigil.logs."+run, "vigil-"+run+"-"
	kafkaArgs := []string{"--kafka.brokers", strings.Join(kf.Brokers(), ","), "--kafka.topic", topic, "--kafka.group", "g-" + run}
	out := os.Stdout
	fmt.Fprintf(out, "# vigil bench distributed: %d lines over HTTP by %d clients and %d through a tailed file; Kafka %s, Elasticsearch %s; %d cores\n\n",
		*lines, *clients, *lines, strings.Join(kf.Brokers(), ","), strings.Join(ef.urls, ","), runtime.NumCPU())
	fmt.Fprintf(out, "| measure | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(out, "| %s | %s |\n", k, v) }

	// Collector: HTTP → Kafka, then file → Kafka.
	b := &bencher{lines: *lines, clients: *clients, batch: 1000, dir: dir}
	col, err := startVigil(filepath.Join(dir, "c"), "collector", append([]string{"--collector.files", filepath.Join(dir, "files", "*.log"),
		"--collector.files.service", "bench-file"}, kafkaArgs...)...)
	if err != nil {
		return err
	}
	defer col.stop()
	b.collector = col.addr
	forwarded := func() int64 {
		v, _ := scrape("http://"+col.addr+"/metrics", "vigil_collector_spool_forwarded_batches_total")
		q, _ := scrape("http://"+col.addr+"/metrics", "vigil_collector_spool_batches")
		if q > 0 {
			return -1
		}
		return int64(v)
	}
	waitDrained := func() {
		for forwarded() < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	cpu := func() float64 { v, _ := cpuSeconds(col.cmd.Process.Pid); return v }
	cpu0 := cpu()
	t0 := time.Now()
	if err := b.pushHTTP(ctx, 0); err != nil {
		return err
	}
	accepted := time.Since(t0)
	waitDrained()
	inKafka := time.Since(t0)
	row("collector HTTP intake: lines/s accepted (200 OK, durable in the spool)", fmt.Sprintf("%.0f", float64(*lines)/accepted.Seconds()))
	row("collector HTTP → Kafka (acks=all): lines/s", fmt.Sprintf("%.0f", float64(*lines)/inKafka.Seconds()))
	row("collector HTTP → Kafka: lines per collector CPU-second", fmt.Sprintf("%.0f", float64(*lines)/(cpu()-cpu0)))
	queued := func() int64 {
		v, _ := scrape("http://"+col.addr+"/metrics", "vigil_collector_queued_records_total")
		return int64(v)
	}
	before := queued()
	cpu0 = cpu()
	t0 = time.Now()
	if err := writeBenchFile(filepath.Join(dir, "files", "bench.log"), *lines); err != nil {
		return err
	}
	for queued()-before < int64(*lines) {
		time.Sleep(20 * time.Millisecond)
	}
	waitDrained()
	row("collector file → Kafka (acks=all): lines/s", fmt.Sprintf("%.0f", float64(*lines)/time.Since(t0).Seconds()))
	row("collector file → Kafka: lines per collector CPU-second", fmt.Sprintf("%.0f", float64(*lines)/(cpu()-cpu0)))
	if rss, err := peakRSS(col.cmd.Process.Pid); err == nil {
		row("collector peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	col.stop()

	// Ingester: Kafka → Elasticsearch, all 2×lines documents.
	ing, err := startVigil(filepath.Join(dir, "i"), "ingester", append(append([]string{}, kafkaArgs...), "--es.urls", strings.Join(ef.urls, ","), "--es.index-prefix", prefix)...)
	if err != nil {
		return err
	}
	defer ing.stop()
	total := int64(2 * *lines)
	t0 = time.Now()
	for {
		v, _ := scrape("http://"+ing.addr+"/metrics", "vigil_ingester_indexed_records_total")
		if int64(v) >= total {
			break
		}
		if time.Since(t0) > 30*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("ingester indexed only %.0f of %d", v, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ingRate := float64(total) / time.Since(t0).Seconds()
	row("ingester Kafka → Elasticsearch: documents/s", fmt.Sprintf("%.0f", ingRate))
	ing.stop()

	// The ceiling: the same documents bulk-loaded directly by the same
	// Elasticsearch client code, no Kafka.
	ceiling, err := directBulk(ctx, ef, "vigil-"+run+"-direct-", *lines)
	if err != nil {
		return err
	}
	row("direct bulk load of the same documents (ceiling): documents/s", fmt.Sprintf("%.0f", ceiling))
	row("ingester / ceiling", fmt.Sprintf("%.0f %%", 100*ingRate/ceiling))

	if *outage > 0 {
		rss, sent, err := outagePhase(ctx, filepath.Join(dir, "o"), *outage, *outageRate)
		if err != nil {
			return err
		}
		row(fmt.Sprintf("collector peak RSS during a %s Kafka outage at %d lines/s (%d lines spooled)", *outage, *outageRate, sent), fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	return nil
}

// distSetup checks that a distributed benchmark was given Kafka and
// Elasticsearch, and returns a scratch directory (cleanup removes it) and a
// run id that names the run's topics and indices.
func distSetup(kf *kafka.Flags, ef *esFlags) (dir, run string, cleanup func(), err error) {
	if !kf.Enabled() || !ef.enabled() {
		return "", "", nil, errors.New("--kafka.brokers and --es.urls are required (make dev-up starts both)")
	}
	dir, err = os.MkdirTemp("", "vigil-bench-dist")
	if err != nil {
		return "", "", nil, err
	}
	return dir, fmt.Sprintf("bench%d", time.Now().Unix()), func() { os.RemoveAll(dir) }, nil
}

// noTraceReceivers turns off the trace receivers of a collector that a
// benchmark of logs starts, so it holds no well-known ports.
var noTraceReceivers = []string{"--collector.otlp.grpc-listen", "", "--collector.zipkin.listen", "", "--collector.jaeger.http-listen", "",
	"--collector.jaeger.compact-listen", "", "--collector.jaeger.binary-listen", ""}

// child is a vigil daemon started by a benchmark.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startVigil(dataDir, role string, args ...string) (*child, error) {
	addr, err := pickPort()
	if err != nil {
		return nil, err
	}
	listen := map[string]string{"collector": "--collector.http.listen", "ingester": "--ingester.listen", "query": "--query.listen"}[role]
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(filepath.Dir(dataDir), "files"), 0o755); err != nil {
		return nil, err
	}
	head := []string{role, "--log.level", "warn", listen, addr}
	if role != "query" {
		head = append(head, "--data-dir", dataDir)
	}
	if role == "collector" {
		head = append(head, noTraceReceivers...) // args may turn them on
	}
	args = append(head, args...)
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, addr: addr}
	for i := 0; i < 600; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("vigil %s did not become ready", role)
}

func (c *child) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// pushHTTP sends b.lines lines with b.clients clients, starting at line from.
func (b *bencher) pushHTTP(ctx context.Context, from int) error {
	var wg sync.WaitGroup
	errc := make(chan error, b.clients)
	per := b.lines / b.clients
	base := time.Now().Add(-10 * time.Minute).UnixNano()
	for c := 0; c < b.clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var body []byte
			for i := from + c*per; i < from+(c+1)*per; i += b.batch {
				body = body[:0]
				for j := i; j < min(i+b.batch, from+(c+1)*per); j++ {
					body = benchLine(body, j, base+int64(j))
				}
				for {
					resp, err := http.Post("http://"+b.collector+"/api/v1/logs", "application/x-ndjson", strings.NewReader(string(body)))
					if err != nil {
						errc <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(c)
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func writeBenchFile(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Now().Add(-5 * time.Minute).UnixNano()
	var line []byte
	for i := 0; i < n; i++ {
		line = benchLine(line[:0], i, base+int64(i))
		_, _ = w.Write(line)
	}
	return errors.Join(w.Flush(), f.Close())
}

// directBulk loads n bench documents into Elasticsearch with the store's
// own bulk path, straight from memory, and returns documents/s.
func directBulk(ctx context.Context, ef *esFlags, prefix string, n int) (float64, error) {
	o := ef.options(0)
	o.IndexPrefix = prefix
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := esstore.Open(ctx, o)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var body []byte
	base := time.Now().Add(-10 * time.Minute).UnixNano()
	for i := 0; i < n; i++ {
		body = benchLine(body, i, base+int64(i))
	}
	var d logsjson.Decoder
	recs, _, bad := d.Decode(nil, body, time.Now().UnixNano())
	if bad > 0 {
		return 0, errors.New("bench lines do not decode")
	}
	for i := range recs {
		recs[i].ID = model.RecordID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), 0xbe}
	}
	t0 := time.Now()
	const chunk = 32768 // the ingester's default bulk
	for i := 0; i < len(recs); i += chunk {
		if err := s.Write(ctx, recs[i:min(i+chunk, len(recs))]); err != nil {
			return 0, err
		}
	}
	return float64(len(recs)) / time.Since(t0).Seconds(), nil
}

// outagePhase runs a collector whose only broker is unreachable and sends
// rate lines/s for d; it returns the collector's peak RSS.
func outagePhase(ctx context.Context, dataDir string, d time.Duration, rate int) (int64, int, error) {
	col, err := startVigil(dataDir, "collector", "--kafka.brokers", "127.0.0.1:1", "--kafka.topic", "vigil.bench.unreachable")
	if err != nil {
		return 0, 0, err
	}
	defer col.stop()
	sent := 0
	var body []byte
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(t0) < d && ctx.Err() == nil {
		<-tick.C
		body = body[:0]
		for j := 0; j < rate/10; j++ {
			body = benchLine(body, sent+j, time.Now().UnixNano()+int64(j))
		}
		resp, err := http.Post("http://"+col.addr+"/api/v1/logs", "application/x-ndjson", strings.NewReader(string(body)))
		if err != nil {
			return 0, sent, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, sent, fmt.Errorf("collector answered %s during the outage", resp.Status)
		}
		sent += rate / 10
	}
	rss, err := peakRSS(col.cmd.Process.Pid)
	return rss, sent, err
}
