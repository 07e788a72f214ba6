package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/esstore"
	"github.com/vigilhq/vigil/internal/logsjson"
	"github.com/vigilhq/vigil/internal/model"
)

// runDistributed is `vigil bench distributed`: it measures the distributed
// path on real Kafka and Elasticsearch: collector HTTP→Kafka and
// file→Kafka, ingester Kafka→Elasticsearch against a direct bulk load of
// the same documents, and the collector's memory while Kafka is
// unreachable.
func runDistributed(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench distributed", "Start `vigil collector` and `vigil ingester` as child processes against real Kafka and\n"+
		"Elasticsearch, and report the rates of each stage, the direct-bulk ceiling, and the collector's\n"+
		"peak RSS during a Kafka outage (a collector pointed at an unreachable broker).")
	lines := fs.Int("bench.lines", 200_000, "lines sent over HTTP, and again through a tailed file")
	clients := fs.Int("bench.clients", 4, "concurrent HTTP clients")
	outage := fs.Duration("bench.outage", 60*time.Second, "length of the Kafka outage phase; 0 skips it")
	outageRate := fs.Int("bench.outage-rate", 20_000, "lines/s sent during the outage")
	df := addDistFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	dir, run, cleanup, err := df.setup()
	if err != nil {
		return err
	}
	defer cleanup()
	topic, prefix := "vigil.logs."+run, "vigil-"+run+"-"
	kafkaArgs := []string{"--kafka.brokers", strings.Join(df.brokers, ","), "--kafka.topic", topic, "--kafka.group", "g-" + run}
	out := os.Stdout
	fmt.Fprintf(out, "# vigil bench distributed: %d lines over HTTP by %d clients and %d through a tailed file; Kafka %s, Elasticsearch %s; %d cores\n\n",
		*lines, *clients, *lines, strings.Join(df.brokers, ","), strings.Join(df.esURLs, ","), runtime.NumCPU())
	row := table(out)

	// Collector: HTTP → Kafka, then file → Kafka.
	b := &bencher{lines: *lines, clients: *clients, batch: 1000, dir: dir}
	col, err := startVigil(filepath.Join(dir, "c"), "collector", append([]string{"--collector.files", filepath.Join(dir, "files", "*.log"),
		"--collector.files.service", "bench-file"}, kafkaArgs...)...)
	if err != nil {
		return err
	}
	defer stop(col)
	b.collector = col.Ready
	forwarded := func() int64 {
		v := metric(col.Ready, "vigil_collector_spool_forwarded_batches_total")
		if metric(col.Ready, "vigil_collector_spool_batches") > 0 {
			return -1
		}
		return int64(v)
	}
	waitDrained := func() {
		for forwarded() < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	cpu := func() float64 { v, _ := col.CPUSeconds(); return v }
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
	queued := func() int64 { return int64(metric(col.Ready, "vigil_collector_queued_records_total")) }
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
	if rss, err := col.PeakRSS(); err == nil {
		row("collector peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	stop(col)

	// Ingester: Kafka → Elasticsearch, all 2×lines documents.
	ing, err := startVigil(filepath.Join(dir, "i"), "ingester", append(append([]string{}, kafkaArgs...), "--es.urls", strings.Join(df.esURLs, ","), "--es.index-prefix", prefix)...)
	if err != nil {
		return err
	}
	defer stop(ing)
	total := int64(2 * *lines)
	t0 = time.Now()
	if v, ok := waitMetric(ctx, ing.Ready, "vigil_ingester_indexed_records_total", float64(total), 50*time.Millisecond); !ok {
		return fmt.Errorf("ingester indexed only %.0f of %d", v, total)
	}
	ingRate := float64(total) / time.Since(t0).Seconds()
	row("ingester Kafka → Elasticsearch: documents/s", fmt.Sprintf("%.0f", ingRate))
	stop(ing)

	// The ceiling: the same documents bulk-loaded directly by the same
	// Elasticsearch client code, no Kafka.
	ceiling, err := directBulk(ctx, df.esURLs, "vigil-"+run+"-direct-", *lines)
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
					_ = resp.Body.Close() // read to its end above
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
	f, err := os.Create(path) // #nosec G304 -- a file in the benchmark's own temporary directory
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

// directBulk loads n bench documents into the Elasticsearch at urls with
// the store's own bulk path and default settings, straight from memory,
// and returns documents/s.
func directBulk(ctx context.Context, urls []string, prefix string, n int) (float64, error) {
	o := esstore.DefaultOptions()
	o.ClientOptions = es.ClientOptions{URLs: urls}
	o.IndexPrefix = prefix
	o.Retention = 0
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
	defer stop(col)
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
		resp, err := http.Post("http://"+col.Ready+"/api/v1/logs", "application/x-ndjson", strings.NewReader(string(body)))
		if err != nil {
			return 0, sent, err
		}
		_ = resp.Body.Close() // read to its end above
		if resp.StatusCode != 200 {
			return 0, sent, fmt.Errorf("collector answered %s during the outage", resp.Status)
		}
		sent += rate / 10
	}
	rss, err := col.PeakRSS()
	return rss, sent, err
}
