// Package esspanstore stores spans in Elasticsearch in Jaeger's own layout
// (daily indices <prefix>-jaeger-span-YYYY-MM-DD and
// <prefix>-jaeger-service-YYYY-MM-DD, Jaeger's field names and types), so a
// stock jaeger-query pointed at the same cluster reads Vigil's spans. It
// implements the query layer's SpanReader and DependencyReader. The layout
// is described in docs/format/jaeger-elasticsearch.md.
package esspanstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Store.
type Options struct {
	// URLs of Elasticsearch nodes, e.g. http://127.0.0.1:9200.
	URLs []string
	// Basic authentication, or an API key (base64 "id:key"), which wins.
	Username, Password, APIKey string
	// IndexPrefix is Jaeger's --es.index-prefix: indices are named
	// <prefix>-jaeger-span-YYYY-MM-DD, or jaeger-span-YYYY-MM-DD when empty.
	IndexPrefix string
	// Shards and Replicas of each daily index.
	Shards, Replicas int
	// Retention deletes a daily index once all of its day is older than
	// this; 0 keeps everything.
	Retention time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		URLs:      []string{"http://127.0.0.1:9200"},
		Shards:    1,
		Replicas:  1,
		Retention: 7 * 24 * time.Hour,
		Logger:    slog.Default(),
	}
}

const (
	maxAttempts    = 8
	retryBase      = 100 * time.Millisecond
	retryMax       = 10 * time.Second
	startTimeout   = 2 * time.Minute
	bulkMaxDocs    = 2000
	maxSearchHits  = 10000 // Elasticsearch's default index.max_result_window
	maxTraceIDs    = 10000 // FindTraces with Limit 0
	maxDepSpans    = 200000
	dayLayout      = "2006-01-02"
	spanIndexPart  = "jaeger-span-"
	serviceIdxPart = "jaeger-service-"
)

// Store reads and writes spans in Elasticsearch. It is safe for concurrent
// use.
type Store struct {
	opts      Options
	logger    *slog.Logger
	es        *elasticsearch.Client
	transport *http.Transport
	prefix    string // "" or "<IndexPrefix>-"
	m         *metrics

	mu       sync.Mutex
	services map[string]struct{} // service docs known to be stored, by index/id
}

// Open connects to Elasticsearch, waits until the cluster is at least
// yellow and installs the span and service index templates.
func Open(ctx context.Context, opts Options) (*Store, error) {
	def := DefaultOptions()
	if len(opts.URLs) == 0 {
		opts.URLs = def.URLs
	}
	if opts.Shards <= 0 {
		opts.Shards = def.Shards
	}
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	p := opts.IndexPrefix
	if p != strings.ToLower(p) || strings.ContainsAny(p, `\/*?"<>| ,#:`) || strings.HasPrefix(p, "_") ||
		strings.HasPrefix(p, "-") || strings.HasPrefix(p, "+") || strings.HasPrefix(p, ".") {
		return nil, fmt.Errorf("index prefix %q: must be lower case, must not start with _ - + . and must not contain \\ / * ? \" < > | , # : or spaces", p)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: opts.URLs, Username: opts.Username, Password: opts.Password, APIKey: opts.APIKey,
		DisableRetry: true, // Write retries itself, with backoff and jitter
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create Elasticsearch client for %v: %w", opts.URLs, err)
	}
	s := &Store{opts: opts, logger: opts.Logger, es: es, transport: tr, m: newMetrics(opts.Registerer), services: map[string]struct{}{}}
	if p != "" {
		s.prefix = p + "-"
	}
	if err := s.waitForCluster(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.installTemplates(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.logger.Info("elasticsearch span store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "retention", opts.Retention)
	return s, nil
}

// waitForCluster polls the cluster health until it is yellow or green (GET /
// is not used: some distributions answer it with 405).
func (s *Store) waitForCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		status, body, err := s.do(ctx, http.MethodGet, "/_cluster/health?wait_for_status=yellow&timeout=5s", nil, "")
		switch {
		case err != nil:
			last = err
		case status == http.StatusOK:
			return nil
		default:
			last = fmt.Errorf("cluster health: status %d: %s", status, snippet(body))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Elasticsearch at %v not ready within %s: %w (check --es.urls and that the cluster is up)", s.opts.URLs, startTimeout, last)
		case <-time.After(time.Second):
		}
	}
}

// Close releases the client's connections. Closing twice is harmless.
func (s *Store) Close() error {
	err := s.es.Close(context.Background())
	s.transport.CloseIdleConnections()
	if errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		err = nil
	}
	return err
}

// Refresh makes everything written so far visible to searches; tests and
// tools call it, Write does not need it for durability.
func (s *Store) Refresh(ctx context.Context) error {
	status, body, err := s.do(ctx, http.MethodPost, "/"+s.prefix+"jaeger-*/_refresh?allow_no_indices=true&ignore_unavailable=true", nil, "")
	if err != nil {
		return fmt.Errorf("cannot refresh %sjaeger-*: %w", s.prefix, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("cannot refresh %sjaeger-*: status %d: %s", s.prefix, status, snippet(body))
	}
	return nil
}

func (s *Store) spanIndex(day time.Time) string {
	return s.prefix + spanIndexPart + day.UTC().Format(dayLayout)
}

func (s *Store) serviceIndex(day time.Time) string {
	return s.prefix + serviceIdxPart + day.UTC().Format(dayLayout)
}

// do sends one request and reads the whole response; err is set only when
// no response arrived.
func (s *Store) do(ctx context.Context, method, path string, body []byte, contentType string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	res, err := s.es.Perform(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading response to %s %s: %w", method, path, err)
	}
	return res.StatusCode, b, nil
}

func snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
