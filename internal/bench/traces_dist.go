package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/es"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/otlptraces"
)

// runTracesDistributed is `vigil bench traces-distributed`: it measures
// the distributed trace path on real Kafka and Elasticsearch: the
// collector's OTLP/gRPC and Jaeger thrift intake into Kafka, the ingester
// from Kafka into Jaeger's Elasticsearch layout against a direct bulk
// load, and the query daemon's latencies.
func runTracesDistributed(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench traces-distributed", "Start `vigil collector`, `vigil ingester` and `vigil query` as child processes against real Kafka\n"+
		"and Elasticsearch; send traces over OTLP/gRPC and Jaeger thrift over HTTP; report the rate of each stage,\n"+
		"the direct-bulk ceiling, peak RSS and the query latencies.")
	clients := fs.Int("bench.clients", 4, "concurrent clients of each protocol")
	traces := fs.Int("bench.traces", 5_000, "traces of 10 spans (11 attributes each) per client and protocol")
	runs := fs.Int("bench.query-runs", 200, "runs of each query for the latency figures")
	df := addDistFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	dir, run, cleanup, err := df.setup()
	if err != nil {
		return err
	}
	defer cleanup()
	kafkaArgs := []string{"--kafka.brokers", strings.Join(df.brokers, ","), "--kafka.topic", "vigil.logs." + run,
		"--kafka.spans-topic", "vigil.spans." + run, "--kafka.group", "g-" + run}
	esArgs := []string{"--es.urls", strings.Join(df.esURLs, ","), "--es.index-prefix", "vigil-" + run, "--es.jaeger.index-prefix", run}
	grpcAddr, err := childproc.FreePort()
	if err != nil {
		return err
	}
	jaegerAddr, err := childproc.FreePort()
	if err != nil {
		return err
	}
	out := os.Stdout
	perProto := *clients * *traces * 10
	fmt.Fprintf(out, "# vigil bench traces-distributed: %d clients × %d traces × 10 spans, 11 attributes each, per protocol; Kafka %s, Elasticsearch %s; %d cores\n\n",
		*clients, *traces, strings.Join(df.brokers, ","), strings.Join(df.esURLs, ","), runtime.NumCPU())
	row := table(out)

	col, err := startVigil(filepath.Join(dir, "c"), "collector", append(kafkaArgs,
		"--collector.otlp.grpc-listen", grpcAddr, "--collector.jaeger.http-listen", jaegerAddr)...)
	if err != nil {
		return err
	}
	defer stop(col)
	drained := func() {
		for {
			v, err := childproc.Metric(col.Ready, "vigil_collector_spool_batches")
			if err == nil && v == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cpu := func() float64 { v, _ := col.CPUSeconds(); return v }

	var ids []string
	for _, proto := range []struct {
		name string
		send func(ctx context.Context, c int) ([]string, error)
	}{
		{"OTLP/gRPC", func(ctx context.Context, c int) ([]string, error) { return sendOTLP(ctx, grpcAddr, c, *traces) }},
		{"Jaeger thrift over HTTP", func(ctx context.Context, c int) ([]string, error) {
			return sendJaegerThrift(ctx, jaegerAddr, c, *traces)
		}},
	} {
		cpu0, t0 := cpu(), time.Now()
		got, err := fanOut(ctx, *clients, proto.send)
		if err != nil {
			return fmt.Errorf("%s: %w", proto.name, err)
		}
		ids = append(ids, got...)
		accepted := time.Since(t0)
		drained()
		inKafka := time.Since(t0)
		row("collector "+proto.name+" intake: spans/s accepted (durable in the spool)", fmt.Sprintf("%.0f", float64(perProto)/accepted.Seconds()))
		row("collector "+proto.name+" → Kafka (acks=all, one message per trace): spans/s", fmt.Sprintf("%.0f", float64(perProto)/inKafka.Seconds()))
		row("collector "+proto.name+" → Kafka: spans per collector CPU-second", fmt.Sprintf("%.0f", float64(perProto)/(cpu()-cpu0)))
	}
	if rss, err := col.PeakRSS(); err == nil {
		row("collector peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	stop(col)

	total := 2 * perProto
	ing, err := startVigil(filepath.Join(dir, "i"), "ingester", append(kafkaArgs, esArgs...)...)
	if err != nil {
		return err
	}
	defer stop(ing)
	t0 := time.Now()
	if v, ok := waitMetric(ctx, ing.Ready, "vigil_ingester_indexed_spans_total", float64(total), 50*time.Millisecond); !ok {
		return fmt.Errorf("ingester stored only %.0f of %d spans", v, total)
	}
	ingRate := float64(total) / time.Since(t0).Seconds()
	row("ingester Kafka → Elasticsearch (Jaeger layout): spans/s", fmt.Sprintf("%.0f", ingRate))
	if rss, err := ing.PeakRSS(); err == nil {
		row("ingester peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	stop(ing)

	ceiling, err := directSpanBulk(ctx, df.esURLs, run+"-direct", *traces)
	if err != nil {
		return err
	}
	row("direct bulk load of the same spans (ceiling): spans/s", fmt.Sprintf("%.0f", ceiling))
	row("ingester / ceiling", fmt.Sprintf("%.0f %%", 100*ingRate/ceiling))

	q, err := startVigil("", "query", esArgs...)
	if err != nil {
		return err
	}
	defer stop(q)
	return traceQueryLatencies(row, "http://"+q.Ready, *runs, ids)
}

// fanOut runs send for clients 0..n-1 concurrently and gathers the trace
// ids they return.
func fanOut(ctx context.Context, n int, send func(ctx context.Context, c int) ([]string, error)) ([]string, error) {
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	errs := make([]error, n)
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := send(ctx, c)
			errs[c] = err
			mu.Lock()
			ids = append(ids, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ids, errors.Join(errs...)
}

// directSpanBulk writes 4 clients' worth of bench traces into the
// Elasticsearch at urls with the span store's own bulk path and default
// settings, straight from memory, and returns spans/s.
func directSpanBulk(ctx context.Context, urls []string, prefix string, traces int) (float64, error) {
	o := esspanstore.DefaultOptions()
	o.ClientOptions = es.ClientOptions{URLs: urls}
	o.Retention = 0
	o.IndexPrefix = prefix
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := esspanstore.Open(ctx, o)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(99, 99)) // #nosec G404 -- seeded benchmark data, meant to be reproducible
	td, _ := benchTraces(rng, 0, 4*traces)
	spans := otlptraces.FromTraces(nil, td)
	t0 := time.Now()
	const chunk = 32768 // the ingester's default batch
	for i := 0; i < len(spans); i += chunk {
		if err := s.Write(ctx, spans[i:min(i+chunk, len(spans))]); err != nil {
			return 0, err
		}
	}
	return float64(len(spans)) / time.Since(t0).Seconds(), nil
}
