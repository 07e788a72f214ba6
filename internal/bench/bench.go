// Package bench is `vigil bench`: it measures Vigil on this machine by
// running the vigil binary's daemons as child processes and loading them as
// clients would. docs/BENCHMARKS.md holds the figures and the commands that
// produced them.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
	"github.com/vigilhq/vigil/internal/config"
)

// Summary is the one-line description of `vigil bench`.
const Summary = "Measure Vigil on this machine: vigil bench logs, vigil bench distributed, vigil bench traces, vigil bench traces-distributed, vigil bench metrics, vigil bench query-storm."

// Run runs `vigil bench <what> [flags]`; args start with what. It starts
// the daemons from the running executable, so it is called from the vigil
// binary.
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "logs":
			return runLogs(ctx, args[1:])
		case "distributed":
			return runDistributed(ctx, args[1:])
		case "traces":
			return runTraces(ctx, args[1:])
		case "traces-distributed":
			return runTracesDistributed(ctx, args[1:])
		case "metrics":
			return runMetrics(ctx, args[1:])
		case "query-storm":
			return runQueryStorm(ctx, args[1:])
		}
	}
	return fmt.Errorf("usage: vigil bench logs|distributed|traces|traces-distributed|metrics|query-storm [flags]; see vigil bench logs --help")
}

// noTraceReceivers turns off the trace receivers and the dumps intake of a
// collector that a benchmark of logs starts, so it holds no well-known
// ports.
var noTraceReceivers = []string{"--collector.otlp.grpc-listen", "", "--collector.zipkin.listen", "", "--collector.jaeger.http-listen", "",
	"--collector.jaeger.compact-listen", "", "--collector.jaeger.binary-listen", "", "--collector.dumps.listen", ""}

// startAllInOne starts `vigil all-in-one` with args and the flags of sec,
// and waits until its query API, at queryAddr, is ready.
func startAllInOne(sec *security, queryAddr string, args ...string) (*childproc.Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The profiler's and the federation's ports are not needed: they stay free.
	args = append(append([]string{"all-in-one", "--profiler.listen", "", "--federation.listen", ""}, args...), sec.args...)
	p := &childproc.Process{Binary: exe, Args: args, Ready: queryAddr, ReadyTLS: sec.tlsClient(), Stderr: os.Stderr}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("vigil all-in-one: %w", err)
	}
	return p, nil
}

// startVigil starts the daemon `vigil <role>` on a free port (its Ready
// address), with dataDir unless it is the query daemon, and waits until it
// is ready. A collector's trace receivers are off unless args turn them on.
func startVigil(dataDir, role string, args ...string) (*childproc.Process, error) {
	addr, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	listen := map[string]string{"collector": "--collector.http.listen", "ingester": "--ingester.listen", "query": "--query.listen"}[role]
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	head := []string{role, "--log.level", "warn", listen, addr}
	if role != "query" {
		// The directory of tailed files sits beside the data directory.
		if err := os.MkdirAll(filepath.Join(filepath.Dir(dataDir), "files"), 0o750); err != nil {
			return nil, err
		}
		head = append(head, "--data-dir", dataDir)
	}
	if role == "collector" {
		head = append(head, noTraceReceivers...) // args may turn them on
	}
	p := &childproc.Process{Binary: exe, Args: append(head, args...), Ready: addr, ReadyTimeout: time.Minute, Stderr: os.Stderr}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("vigil %s: %w", role, err)
	}
	return p, nil
}

// stop stops a daemon a benchmark started; how it exits is no figure.
func stop(p *childproc.Process) { _ = p.Stop(time.Minute) }

// metric reads a metric of the daemon at addr; a failed scrape reads 0.
func metric(addr, name string) float64 {
	v, _ := childproc.Metric(addr, name)
	return v
}

// waitMetric reads the metric name of addr every poll until it reaches
// want, for 30 minutes at most or until ctx ends; it returns the last value
// read and whether it reached want.
func waitMetric(ctx context.Context, addr, name string, want float64, poll time.Duration) (float64, bool) {
	return waitFor(ctx, func() float64 { return metric(addr, name) }, want, poll)
}

// waitFor is waitMetric of the value read returns.
func waitFor(ctx context.Context, read func() float64, want float64, poll time.Duration) (float64, bool) {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		v := read()
		if v >= want {
			return v, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return v, false
		}
		time.Sleep(poll)
	}
}

// table prints the header of a two-column Markdown table of figures on out
// and returns the function that prints one row.
func table(out io.Writer) (row func(measure, value string)) {
	fmt.Fprintf(out, "| measure | value |\n|---|---|\n")
	return func(k, v string) { fmt.Fprintf(out, "| %s | %s |\n", k, v) }
}

// distFlags are the settings of Kafka and Elasticsearch that the
// distributed benchmarks hand to the daemons they start, under the daemons'
// flag names. The daemons also inherit the environment (VIGIL_KAFKA_TLS, …).
type distFlags struct {
	brokers config.StringList
	esURLs  config.StringList
}

func addDistFlags(fs *flag.FlagSet) *distFlags {
	f := &distFlags{}
	fs.Var(&f.brokers, "kafka.brokers", "Kafka bootstrap brokers, host:port, comma-separated; set to use Kafka instead of the embedded queue")
	fs.Var(&f.esURLs, "es.urls", "Elasticsearch URLs, comma-separated; set to use Elasticsearch instead of the embedded store")
	return f
}

// setup checks that a distributed benchmark was given Kafka and
// Elasticsearch, and returns a scratch directory (cleanup removes it) and a
// run id that names the run's topics and indices.
func (f *distFlags) setup() (dir, run string, cleanup func(), err error) {
	if len(f.brokers) == 0 || len(f.esURLs) == 0 {
		return "", "", nil, errors.New("--kafka.brokers and --es.urls are required (make dev-up starts both)")
	}
	dir, err = os.MkdirTemp("", "vigil-bench-dist")
	if err != nil {
		return "", "", nil, err
	}
	return dir, fmt.Sprintf("bench%d", time.Now().Unix()), func() { _ = os.RemoveAll(dir) }, nil // removal is best effort: a leftover temporary directory is harmless
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
