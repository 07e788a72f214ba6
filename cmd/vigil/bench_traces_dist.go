package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/esspanstore"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlptraces"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// runBenchTracesDistributed measures the distributed trace path on real
// Kafka and Elasticsearch: the collector's OTLP/gRPC and Jaeger thrift
// intake into Kafka, the ingester from Kafka into Jaeger's Elasticsearch
// layout against a direct bulk load, and the query daemon's latencies.
func runBenchTracesDistributed(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("bench traces-distributed", "Start `vigil collector`, `vigil ingester` and `vigil query` as child processes against real Kafka\n"+
		"and Elasticsearch; send traces over OTLP/gRPC and Jaeger thrift over HTTP; report the rate of each stage,\n"+
		"the direct-bulk ceiling, peak RSS and the query latencies.")
	clients := fs.Int("bench.clients", 4, "concurrent clients of each protocol")
	traces := fs.Int("bench.traces", 5_000, "traces of 10 spans (11 attributes each) per client and protocol")
	runs := fs.Int("bench.query-runs", 200, "runs of each query for the latency figures")
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
	kafkaArgs := []string{"--kafka.brokers", strings.Join(kf.Brokers(), ","), "--kafka.topic", "vigil.logs." + run,
		"--kafka.spans-topic", "vigil.spans." + run, "--kafka.group", "g-" + run}
	esArgs := []string{"--es.urls", strings.Join(ef.urls, ","), "--es.index-prefix", "vigil-" + run, "--es.jaeger.index-prefix", run}
	grpcAddr, err := pickPort()
	if err != nil {
		return err
	}
	jaegerAddr, err := pickPort()
	if err != nil {
		return err
	}
	out := os.Stdout
	perProto := *clients * *traces * 10
	fmt.Fprintf(out, "# vigil bench traces-distributed: %d clients × %d traces × 10 spans, 11 attributes each, per protocol; Kafka %s, Elasticsearch %s; %d cores\n\n",
		*clients, *traces, strings.Join(kf.Brokers(), ","), strings.Join(ef.urls, ","), runtime.NumCPU())
	fmt.Fprintf(out, "| measure | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(out, "| %s | %s |\n", k, v) }

	col, err := startVigil(filepath.Join(dir, "c"), "collector", append(kafkaArgs,
		"--collector.otlp.grpc-listen", grpcAddr, "--collector.jaeger.http-listen", jaegerAddr)...)
	if err != nil {
		return err
	}
	defer col.stop()
	drained := func() {
		for {
			v, err := scrape("http://"+col.addr+"/metrics", "vigil_collector_spool_batches")
			if err == nil && v == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cpu := func() float64 { v, _ := cpuSeconds(col.cmd.Process.Pid); return v }

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
	if rss, err := peakRSS(col.cmd.Process.Pid); err == nil {
		row("collector peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	col.stop()

	total := 2 * perProto
	ing, err := startVigil(filepath.Join(dir, "i"), "ingester", append(kafkaArgs, esArgs...)...)
	if err != nil {
		return err
	}
	defer ing.stop()
	t0 := time.Now()
	for {
		v, _ := scrape("http://"+ing.addr+"/metrics", "vigil_ingester_indexed_spans_total")
		if int(v) >= total {
			break
		}
		if time.Since(t0) > 30*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("ingester stored only %.0f of %d spans", v, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ingRate := float64(total) / time.Since(t0).Seconds()
	row("ingester Kafka → Elasticsearch (Jaeger layout): spans/s", fmt.Sprintf("%.0f", ingRate))
	if rss, err := peakRSS(ing.cmd.Process.Pid); err == nil {
		row("ingester peak RSS", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	ing.stop()

	ceiling, err := directSpanBulk(ctx, ef, run+"-direct", *traces)
	if err != nil {
		return err
	}
	row("direct bulk load of the same spans (ceiling): spans/s", fmt.Sprintf("%.0f", ceiling))
	row("ingester / ceiling", fmt.Sprintf("%.0f %%", 100*ingRate/ceiling))

	q, err := startVigil("", "query", esArgs...)
	if err != nil {
		return err
	}
	defer q.stop()
	return traceQueryLatencies(row, "http://"+q.addr, *runs, ids)
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

// sendOTLP exports n bench traces to addr over OTLP/gRPC, 51 traces (510
// spans) a request, and returns a sample of their ids.
func sendOTLP(ctx context.Context, addr string, client, n int) ([]string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	exp := ptraceotlp.NewGRPCClient(conn)
	rng := rand.New(rand.NewPCG(uint64(client), 7))
	var ids []string
	for sent := 0; sent < n; {
		k := min(51, n-sent)
		td, first := benchTraces(rng, client, k)
		if _, err := exp.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
			return ids, err
		}
		if sent%1000 == 0 {
			ids = append(ids, first)
		}
		sent += k
	}
	return ids, nil
}

// sendJaegerThrift posts n bench traces to addr's POST /api/traces as
// jaeger-client libraries do (a thrift-binary Batch per request, one
// process), 51 traces a request, and returns a sample of their ids.
func sendJaegerThrift(ctx context.Context, addr string, client, n int) ([]string, error) {
	rng := rand.New(rand.NewPCG(uint64(client), 11))
	ser := thrift.NewTSerializer()
	be := binary.BigEndian
	var ids []string
	for sent := 0; sent < n; {
		k := min(51, n-sent)
		td, first := benchTraces(rng, client, k)
		spans := otlptraces.FromTraces(nil, td)
		batch := &jaeger.Batch{Process: &jaeger.Process{ServiceName: fmt.Sprintf("bench-%d", rng.IntN(20)),
			Tags: []*jaeger.Tag{{Key: "hostname", VType: jaeger.TagType_STRING, VStr: thrift.StringPtr(fmt.Sprintf("host-%d", client))}}}}
		for i := range spans {
			s := &spans[i]
			js := &jaeger.Span{
				TraceIdHigh: int64(be.Uint64(s.TraceID[:8])), TraceIdLow: int64(be.Uint64(s.TraceID[8:])),
				SpanId: int64(be.Uint64(s.SpanID[:])), ParentSpanId: int64(be.Uint64(s.ParentSpanID[:])),
				OperationName: s.Name, Flags: 1, StartTime: s.StartTime / 1000, Duration: s.Duration / 1000,
			}
			for _, a := range s.Attributes {
				t := &jaeger.Tag{Key: a.Key}
				switch a.Type {
				case model.AttrBool:
					t.VType, t.VBool = jaeger.TagType_BOOL, thrift.BoolPtr(a.Int != 0)
				case model.AttrInt64:
					t.VType, t.VLong = jaeger.TagType_LONG, thrift.Int64Ptr(a.Int)
				case model.AttrFloat64:
					t.VType, t.VDouble = jaeger.TagType_DOUBLE, thrift.Float64Ptr(a.Float)
				default:
					t.VType, t.VStr = jaeger.TagType_STRING, thrift.StringPtr(a.Str)
				}
				js.Tags = append(js.Tags, t)
			}
			batch.Spans = append(batch.Spans, js)
		}
		body, err := ser.Write(ctx, batch)
		if err != nil {
			return ids, err
		}
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/traces", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-thrift")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return ids, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 300 {
				break
			}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				return ids, fmt.Errorf("POST /api/traces: %s", resp.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if sent%1000 == 0 {
			ids = append(ids, first)
		}
		sent += k
	}
	return ids, nil
}

// directSpanBulk writes 4 clients' worth of bench traces into
// Elasticsearch with the span store's own bulk path, straight from memory,
// and returns spans/s.
func directSpanBulk(ctx context.Context, ef *esFlags, prefix string, traces int) (float64, error) {
	o := ef.spanOptions(0)
	o.IndexPrefix = prefix
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := esspanstore.Open(ctx, o)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(99, 99))
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

// traceQueryLatencies reports the p50 and p99 of two Jaeger API queries at
// base, runs times each: a trace by id (cycling through ids) and a
// service + tag search of the bench traces.
func traceQueryLatencies(row func(k, v string), base string, runs int, ids []string) error {
	for _, q := range []struct {
		name string
		path func(i int) string
	}{
		{"`/api/traces/{id}` p50 / p99", func(i int) string { return "/api/traces/" + ids[i%len(ids)] }},
		{"service + tag search, limit 20, p50 / p99", func(i int) string {
			return fmt.Sprintf("/api/traces?service=bench-%d&tags=%%7B%%22customer%%22%%3A%%22c-%d%%22%%7D&limit=20&lookback=1h", i%20, i%500)
		}},
	} {
		p50, p99, err := latency(runs, func(i int) string { return base + q.path(i) })
		if err != nil {
			return err
		}
		row(q.name, fmt.Sprintf("%s / %s", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond)))
	}
	return nil
}

// latency requests url(i) runs times and returns the p50 and p99.
func latency(runs int, url func(i int) string) (time.Duration, time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		resp, err := http.Get(url(i))
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("%s: %s", url(i), resp.Status)
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], nil
}
