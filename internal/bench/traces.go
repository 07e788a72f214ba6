package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/config"
)

// runTraces is `vigil bench traces`: it measures the all-in-one trace path
// with the load of the traces issue: C clients × T traces × 10 spans with
// 11 attributes each, sent over OTLP/gRPC as an OpenTelemetry SDK's batch
// exporter does (512 spans a request), retrying a request the collector
// refuses because its queue is full.
func runTraces(ctx context.Context, args []string) (err error) {
	fs := config.NewFlagSet("bench traces", "Start `vigil all-in-one` as a child process and send it traces over OTLP/gRPC; report spans/s until\n"+
		"queryable, peak RSS, bytes per span on disk and the latency of trace-by-id and of a service+tag search.")
	clients := fs.Int("bench.clients", 4, "concurrent OTLP/gRPC clients")
	traces := fs.Int("bench.traces", 20_000, "traces per client")
	runs := fs.Int("bench.query-runs", 200, "runs of each query for the latency figures")
	secFlags := addSecurityFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
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
	rounds := 1
	if len(modes) > 1 {
		rounds = max(1, *secFlags.rounds)
	}
	results := map[*security][]throughput{}
	for r := 0; r < rounds; r++ {
		for _, sec := range modes {
			res, err := benchTracesOnce(ctx, sec, *clients, *traces, *runs, profilePath(*secFlags.profile, sec, r), *secFlags.profileSeconds)
			if err != nil {
				return fmt.Errorf("security %s: %w", sec.name, err)
			}
			results[sec] = append(results[sec], res)
		}
	}
	if len(modes) > 1 {
		printComparison(os.Stdout, fmt.Sprintf("vigil bench traces: %d clients × %d traces × 10 spans over OTLP/gRPC", *clients, *traces), rounds, modes, results)
	}
	return nil
}

// tracesFigures name what a run of `vigil bench traces` measured.
var tracesFigures = [4]string{"spans/s accepted", "spans/s until queryable",
	"CPU seconds of vigil all-in-one per million spans (lower is better)",
	"CPU seconds of the load generator per million spans"}

// benchTracesOnce runs `vigil bench traces` once on a fresh all-in-one
// secured by sec and prints its table.
func benchTracesOnce(ctx context.Context, sec *security, clients, traces, runs int, profile string, profileSeconds int) (res throughput, err error) {
	dir, err := os.MkdirTemp("", "vigil-bench-traces")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	ports := map[string]string{}
	for _, k := range []string{"http", "query", "grpc"} {
		if ports[k], err = childproc.FreePort(); err != nil {
			return res, err
		}
	}
	child, err := startAllInOne(sec, ports["query"], "--data-dir", dir, "--log.level", "warn",
		"--collector.http.listen", ports["http"], "--query.listen", ports["query"], "--collector.otlp.grpc-listen", ports["grpc"],
		"--collector.zipkin.listen", "", "--collector.jaeger.http-listen", "", "--collector.jaeger.compact-listen", "", "--collector.jaeger.binary-listen", "", "--collector.dumps.listen", "")
	if err != nil {
		return res, err
	}
	defer stop(child)

	total := clients * traces * 10
	var ids []string
	var mu sync.Mutex
	var retried atomic.Int64
	cpu0, err := child.CPUSeconds()
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := grpc.NewClient(ports["grpc"], sec.grpcOptions()...)
			if err != nil {
				errc <- err
				return
			}
			defer conn.Close()
			client := ptraceotlp.NewGRPCClient(conn)
			rng := rand.New(rand.NewPCG(uint64(c), 42)) // #nosec G404 -- seeded benchmark data, meant to be reproducible
			for sent := 0; sent < traces; {
				n := min(51, traces-sent) // 510 spans a request
				td, first := benchTraces(rng, c, n)
				if err := exportRetrying(ctx, client, td, &retried); err != nil {
					errc <- err
					return
				}
				if sent%1000 == 0 {
					mu.Lock()
					ids = append(ids, first)
					mu.Unlock()
				}
				sent += n
			}
		}(c)
	}
	profiled := profileCPU(sec, ports["http"], profileSeconds, profile)
	wg.Wait()
	accepted := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return res, errors.Join(err, profiled())
	}
	if v, ok := sec.waitMetric(ctx, ports["http"], "vigil_ingester_indexed_spans_total", float64(total), 20*time.Millisecond); !ok {
		return res, errors.Join(fmt.Errorf("only %.0f of %d spans stored", v, total), profiled())
	}
	queryable := time.Since(start)
	self1 := selfCPU()
	cpu1, err := child.CPUSeconds()
	if err != nil {
		return res, errors.Join(err, profiled())
	}
	// The profile may outlast the load: it is awaited after the figures.
	if err := profiled(); err != nil {
		return res, err
	}
	res = measured(total, accepted, queryable, cpu1-cpu0, self1-self0, tracesFigures)
	out := os.Stdout
	fmt.Fprintf(out, "# vigil bench traces: %d clients × %d traces × 10 spans, 11 attributes each, over OTLP/gRPC; security %s; %d cores\n\n",
		clients, traces, sec.name, runtime.NumCPU())
	row := table(out)
	row("spans/s accepted", fmt.Sprintf("%.0f", res.accepted))
	row("spans/s until queryable", fmt.Sprintf("%.0f", res.queryable))
	row("CPU seconds of vigil all-in-one per million spans, until stored", fmt.Sprintf("%.1f", res.cpu))
	row("CPU seconds of the load generator per million spans, until stored", fmt.Sprintf("%.1f", res.clientCPU))
	row("load average (1, 5, 15 min) after sending", res.load)
	row("requests retried (queue full)", fmt.Sprint(retried.Load()))
	if rss, err := child.PeakRSS(); err == nil {
		row("peak RSS of vigil all-in-one", fmt.Sprintf("%.0f MB", float64(rss)/1e6))
	}
	if size, err := dirSize(filepath.Join(dir, "spans")); err == nil {
		row("span store bytes on disk per span", fmt.Sprintf("%.0f", float64(size)/float64(total)))
	}
	err = traceQueryLatenciesOver(sec, row, sec.url(ports["query"], ""), runs, ids)
	fmt.Fprintln(out)
	return res, err
}

// exportRetrying sends td, retrying with backoff while the collector
// answers that its queue is full or it is unavailable, as OpenTelemetry
// SDK exporters do; retried counts the retries.
func exportRetrying(ctx context.Context, client ptraceotlp.GRPCClient, td ptrace.Traces, retried *atomic.Int64) error {
	req := ptraceotlp.NewExportRequestFromTraces(td)
	backoff := 5 * time.Millisecond
	for {
		_, err := client.Export(ctx, req)
		if c := status.Code(err); c != codes.ResourceExhausted && c != codes.Unavailable {
			return err
		}
		retried.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// benchTraces builds n traces of 10 spans (a server root and 9 children
// over 20 services), 11 attributes each; it returns them and the first
// trace's id.
func benchTraces(rng *rand.Rand, client, n int) (ptrace.Traces, string) {
	td := ptrace.NewTraces()
	now := time.Now()
	var first string
	for t := 0; t < n; t++ {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], rng.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rng.Uint64())
		if t == 0 {
			first = fmt.Sprintf("%x", tid[:])
		}
		var root pcommon.SpanID
		for s := 0; s < 10; s++ {
			rs := td.ResourceSpans().AppendEmpty()
			svc := fmt.Sprintf("bench-%d", rng.IntN(20))
			rs.Resource().Attributes().PutStr("service.name", svc)
			rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", client))
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], rng.Uint64())
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			if s == 0 {
				root = sid
				sp.SetKind(ptrace.SpanKindServer)
			} else {
				sp.SetParentSpanID(root)
				sp.SetKind(ptrace.SpanKindClient)
			}
			sp.SetName(fmt.Sprintf("op-%d", rng.IntN(10)))
			st := now.Add(time.Duration(s) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(1+rng.IntN(50)) * time.Millisecond)))
			a := sp.Attributes()
			a.PutStr("http.method", "GET")
			a.PutStr("http.route", fmt.Sprintf("/api/v1/items/%d", rng.IntN(100)))
			a.PutInt("http.status_code", 200)
			a.PutStr("customer", fmt.Sprintf("c-%d", rng.IntN(500)))
			a.PutStr("region", "eu-west-1")
			a.PutBool("cache.hit", rng.IntN(2) == 0)
			a.PutInt("items", int64(rng.IntN(20)))
			a.PutDouble("ratio", rng.Float64())
			a.PutStr("net.peer.name", fmt.Sprintf("10.0.%d.%d", rng.IntN(4), rng.IntN(250)))
			a.PutStr("user.id", fmt.Sprintf("u-%d", rng.IntN(100000)))
			a.PutStr("build", "2026.11.23")
		}
	}
	return td, first
}
