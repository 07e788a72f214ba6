package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vigilhq/vigil/collector"
	"github.com/vigilhq/vigil/ingester"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue/diskqueue"
	"github.com/vigilhq/vigil/query"
)

// Each group of flags is declared next to the settings it fills, and the
// commands pick the groups they need; all-in-one takes them all.

type commonFlags struct {
	dataDir    *string
	logLevel   *string
	logFormat  *string
	tls        *tlsFlags
	authConfig *string
}

func addCommonFlags(fs *flag.FlagSet) *commonFlags {
	return &commonFlags{
		dataDir:    fs.String("data-dir", "./data", "directory for the queue, the store and durable offsets"),
		logLevel:   fs.String("log.level", "info", "log level: debug, info, warn or error"),
		logFormat:  fs.String("log.format", "text", "log format: text or json"),
		tls:        addTLSFlags(fs),
		authConfig: addAuthFlag(fs),
	}
}

func (c *commonFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log.level %q: want debug, info, warn or error", *c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want text or json", *c.logFormat)
}

type collectorFlags struct {
	listen         *string
	maxBody        *int64
	files          config.StringList
	fileService    *string
	localTenant    *string
	multiline      *string
	maxLineBytes   *int
	lokiMaxLine    *int
	batchMaxRecs   *int
	batchMaxWait   *time.Duration
	host           *string
	filesMaxBatch  *int
	filesBatchWait *time.Duration
	addrs          collector.Addrs // the receivers other than HTTP's
	sampleRate     *float64
	serviceRates   *string
	dumpsKeys      config.StringList
	overload       collector.OverloadOptions
	limits         collector.LimitsOptions
}

func addCollectorFlags(fs *flag.FlagSet) *collectorFlags {
	f := &collectorFlags{
		listen:         fs.String("collector.http.listen", config.DefaultCollectorHTTPAddr, "address of the HTTP receivers: POST /api/v1/logs, OTLP/HTTP /v1/logs, /v1/traces and /v1/metrics, Loki's /loki/api/v1/push"),
		maxBody:        fs.Int64("collector.http.max-body-bytes", 16<<20, "largest accepted request body, compressed or decoded"),
		fileService:    fs.String("collector.files.service", "", "service of tailed lines; empty derives it from the file name (api.log → api)"),
		localTenant:    fs.String("collector.local-tenant", "", "tenant of the records that arrive without credentials: tailed files (--collector.files) and the Jaeger UDP agent ports; empty is the default tenant (needs --auth.config otherwise)"),
		multiline:      fs.String("collector.files.multiline-start", "", "regular expression matching the first line of a record; other lines join the previous one"),
		maxLineBytes:   fs.Int("collector.files.max-line-bytes", 64<<10, "longer lines are cut and marked truncated"),
		lokiMaxLine:    fs.Int("collector.loki.max-line-bytes", collector.DefaultOptions().LokiMaxLineBytes, "longest line accepted by the Loki push API, like Loki's max_line_size; longer ones are refused with 400; 0 for no limit"),
		filesMaxBatch:  fs.Int("collector.files.batch-max-lines", 4096, "lines per batch read from one file"),
		filesBatchWait: fs.Duration("collector.files.batch-max-wait", 200*time.Millisecond, "longest wait to fill a batch from a file"),
		batchMaxRecs:   fs.Int("collector.batch.max-records", 8192, "records per queue message"),
		batchMaxWait:   fs.Duration("collector.batch.max-wait", 20*time.Millisecond, "how long small HTTP requests wait to share a queue message"),
		host:           fs.String("collector.host", "", "host.name of tailed lines; empty uses the machine's host name"),
	}
	fs.Var(&f.files, "collector.files", "glob patterns of log files to tail (comma-separated or repeated)")
	l := &f.addrs
	fs.StringVar(&l.GRPC, "collector.otlp.grpc-listen", config.DefaultOTLPGRPCAddr, "address of the OTLP/gRPC receiver (logs, traces and metrics); empty disables it")
	fs.StringVar(&l.Zipkin, "collector.zipkin.listen", config.DefaultZipkinAddr, "address of the Zipkin v2 receiver, POST /api/v2/spans; empty disables it")
	fs.StringVar(&l.JaegerHTTP, "collector.jaeger.http-listen", config.DefaultJaegerHTTPAddr, "address of the Jaeger thrift-over-HTTP receiver, POST /api/traces; empty disables it")
	fs.StringVar(&l.JaegerCompact, "collector.jaeger.compact-listen", config.DefaultJaegerCompactAddr, "UDP address of the Jaeger agent receiver, thrift compact; empty disables it")
	fs.StringVar(&l.JaegerBinary, "collector.jaeger.binary-listen", config.DefaultJaegerBinaryAddr, "UDP address of the Jaeger agent receiver, thrift binary; empty disables it")
	f.sampleRate = fs.Float64("collector.sampling.rate", 1, "fraction of traces kept by head sampling; spans of grade-1 services are always kept")
	f.serviceRates = fs.String("collector.sampling.service-rates", "", "per-service sampling fractions, e.g. search=0.1,batch=0.01")
	fs.StringVar(&l.Dumps, "collector.dumps.listen", config.DefaultDumpsAddr, "address of the Sentry-compatible dumps intake, POST /api/{project}/envelope/ and /store/; empty disables it")
	ov := &f.overload
	fs.IntVar(&ov.MaxInflight, "collector.overload.max-inflight", 0, "requests the receivers publish to the queue at once; the others wait by grade (1 first) and are shed with 429 by grade (4 first); 0 disables overload protection")
	fs.IntVar(&ov.MaxQueue, "collector.overload.max-queue", 0, "requests waiting for one of --collector.overload.max-inflight; 0 for four times that")
	fs.DurationVar(&ov.QueueBudget, "collector.overload.queue-budget", 250*time.Millisecond, "longest a request waits for its turn before it is answered 429")
	fs.Float64Var(&ov.ServiceRate, "collector.limits.service-rate", 0, "each service's fair budget in records (log records, spans, events) per second; a service over it is answered 429 with Retry-After; 0 for no budget")
	fs.IntVar(&ov.ServiceBurst, "collector.limits.service-burst", 0, "records a service may send at once above --collector.limits.service-rate; 0 for one second's budget")
	lim := &f.limits
	fs.Float64Var(&lim.IngestionRate, "collector.limits.ingestion-rate", 0, "each tenant's ingestion rate in records (log lines, spans, Sentry events) per second, unless its limits.ingestion_rate in --auth.config says; a request over it is refused whole with 429 and Retry-After; 0 for unlimited")
	fs.IntVar(&lim.IngestionBurst, "collector.limits.ingestion-burst", 0, "records a tenant may send at once above --collector.limits.ingestion-rate, unless its limits.ingestion_burst says; 0 for one second's rate")
	fs.IntVar(&lim.MaxStreams, "collector.limits.max-streams", 0, "active log streams (distinct env, grade, host, level, service, source) per tenant, unless its limits.max_streams in --auth.config says; lines of new streams past it are refused with 400, lines of active streams keep flowing; 0 for unlimited")
	fs.DurationVar(&lim.StreamWindow, "collector.limits.stream-window", collector.DefaultStreamWindow, "how long a log stream counts as active after its last line, for --collector.limits.max-streams")
	fs.Var(&f.dumpsKeys, "dumps.keys", "DSN public keys the dumps intake accepts, KEY or KEY/PROJECT (comma-separated or repeated); none refuses every event, except that all-in-one creates one")
	return f
}

func (f *collectorFlags) options(dataDir string) collector.Options {
	o := collector.DefaultOptions()
	o.MaxBodyBytes = *f.maxBody
	o.LokiMaxLineBytes = *f.lokiMaxLine
	o.BatchMaxRecords = *f.batchMaxRecs
	o.BatchMaxWait = *f.batchMaxWait
	o.FilePatterns = f.files
	o.DataDir = dataDir
	o.Files.Service = *f.fileService
	o.LocalTenant = *f.localTenant
	o.Files.Host = *f.host
	o.Files.MultilineStart = *f.multiline
	o.Files.MaxLineBytes = *f.maxLineBytes
	o.Files.BatchMaxLines = *f.filesMaxBatch
	o.Files.BatchMaxWait = *f.filesBatchWait
	o.Listen = f.addrs
	o.Listen.HTTP = *f.listen
	o.SampleRate, o.ServiceSampleRates = *f.sampleRate, *f.serviceRates
	o.Dumps.Keys = f.dumpsKeys
	o.Overload = f.overload
	o.Limits = f.limits
	return o
}

type queueFlags struct {
	maxBytes     *int64
	segmentBytes *int64
}

func addQueueFlags(fs *flag.FlagSet) *queueFlags {
	d := diskqueue.DefaultOptions()
	return &queueFlags{
		maxBytes:     fs.Int64("queue.max-bytes", d.MaxBytes, "bound of the embedded queue's unconsumed bytes; when full, intake answers 429 and tailing pauses"),
		segmentBytes: fs.Int64("queue.segment-bytes", d.SegmentBytes, "size of one embedded queue segment file"),
	}
}

// options returns the sizes of an embedded queue; its directory is the
// signal's.
func (f *queueFlags) options() diskqueue.Options {
	o := diskqueue.DefaultOptions()
	o.MaxBytes = *f.maxBytes
	o.SegmentBytes = *f.segmentBytes
	return o
}

type ingesterFlags struct {
	listen      *string
	maxRecords  *int
	maxSpans    *int
	maxWait     *time.Duration
	ratePerSec  *float64
	liftFields  *bool
	grades      *string
	defaultEnv  *string
	queryListen *string
}

func addIngesterFlags(fs *flag.FlagSet, daemon bool) *ingesterFlags {
	d := ingester.DefaultOptions()
	f := &ingesterFlags{
		maxRecords: fs.Int("ingester.batch.max-records", d.MaxBatchRecords, "log records per bulk store write"),
		maxSpans:   fs.Int("ingester.batch.max-spans", ingester.DefaultMaxBatchSpans, "spans per bulk span store write"),
		maxWait:    fs.Duration("ingester.batch.max-wait", d.MaxBatchWait, "longest wait to fill a bulk store write"),
		ratePerSec: fs.Float64("ingester.max-records-per-second", 0, "consumption rate limit protecting the store, log records and spans each; 0 for none"),
		liftFields: fs.Bool("ingester.lift-fields", false, "copy the top-level fields of JSON and logfmt bodies into record attributes"),
		grades:     fs.String("ingester.service-grades", "", "grades of services whose records carry none, e.g. api=1,batch=4"),
		defaultEnv: fs.String("ingester.default-env", "", "env of records that carry none"),
	}
	if daemon {
		f.listen = fs.String("ingester.listen", config.DefaultIngesterAddr, "address of the ingester's /metrics, /healthz, /readyz and /debug/pprof")
		f.queryListen = fs.String("ingester.query-listen", "", "also serve the Loki query API of the embedded store on this address (the embedded store is read by the process that writes it)")
	}
	return f
}

func (f *ingesterFlags) options() (ingester.Options, error) {
	o := ingester.DefaultOptions()
	o.MaxBatchRecords = *f.maxRecords
	o.MaxBatchWait = *f.maxWait
	o.MaxRecordsPerSecond = *f.ratePerSec
	o.LiftFields = *f.liftFields
	o.DefaultEnv = *f.defaultEnv
	grades, err := ingester.ParseServiceGrades(*f.grades)
	if err != nil {
		return o, fmt.Errorf("--ingester.service-grades: %w", err)
	}
	o.ServiceGrades = grades
	return o, nil
}

type storeFlags struct {
	retention config.Duration
}

func addStoreFlags(fs *flag.FlagSet) *storeFlags {
	f := &storeFlags{}
	fs.Var(&f.retention, "retention", "how long to keep logs, e.g. 7d; whole days are dropped; 0 keeps everything")
	return f
}

type queryFlags struct {
	listen     *string
	maxEntries *int
	maxSeries  *int
	timeout    *time.Duration
	limits     *queryLimitFlags
}

func addQueryFlags(fs *flag.FlagSet) *queryFlags {
	d := query.DefaultOptions()
	return &queryFlags{
		listen:     fs.String("query.listen", config.DefaultQueryAddr, "address of the query APIs (Loki) and the daemon's /metrics"),
		maxEntries: fs.Int("query.max-entries", d.MaxEntries, "largest limit of a log query"),
		maxSeries:  fs.Int("query.max-series", d.MaxSeries, "most series one LogQL metric query or volume query may return; past it the query is answered 400"),
		timeout:    fs.Duration("query.timeout", d.Timeout, "longest time one query may run"),
		limits:     addQueryLimitFlags(fs),
	}
}

func (f *queryFlags) options() query.Options {
	o := query.DefaultOptions()
	o.MaxEntries, o.MaxSeries = *f.maxEntries, *f.maxSeries
	o.Timeout = *f.timeout
	o.Version = version
	return o
}

// printURLs tells a person where things are once a daemon listens; dsn is
// the dumps intake's for Sentry SDKs, "" when it is off, and profilerAddr
// the profiler's push API, "" when it is off; authOn adds how to send a key.
func printURLs(scheme, collectorAddr, queryAddr, dsn, profilerAddr string, authOn bool) {
	host := func(addr string) string {
		if strings.HasPrefix(addr, ":") {
			return "localhost" + addr
		}
		return addr
	}
	c, q := host(collectorAddr), host(queryAddr)
	fmt.Fprintf(os.Stderr, `
Vigil is running.
  web UI:       %[3]s://%[2]s/
  send logs:    curl -s %[3]s://%[1]s/api/v1/logs -d '{"service":"demo","level":"info","message":"hello vigil"}'
  find them:    curl -s -G %[3]s://%[2]s/loki/api/v1/query_range --data-urlencode 'query={service="demo"} |= "hello"'
  Grafana:      add a Loki data source with URL %[3]s://%[2]s
  metrics:      %[3]s://%[1]s/metrics  %[3]s://%[2]s/metrics
`, c, q, scheme)
	if authOn {
		fmt.Fprintln(os.Stderr, `  keys:         --auth.config is on: add -H "Authorization: Bearer KEY" (a tenant's key) to these requests,
                and the key as the basic auth password of Grafana's data sources`)
	}
	if dsn != "" {
		fmt.Fprintf(os.Stderr, `  errors:       point Sentry SDKs at the DSN %[1]s
  find them:    curl -s %[3]s://%[2]s/vigil/api/v1/dumps/issues
`, dsn, q, scheme)
	}
	if profilerAddr != "" {
		fmt.Fprintf(os.Stderr, `  profiles:     point pyroscope-go (ServerAddress) or Alloy's pyroscope.write at %[2]s://%[1]s;
                scrape pprof endpoints with --profiler.config
`, host(profilerAddr), scheme)
	}
	fmt.Fprintln(os.Stderr)
}
