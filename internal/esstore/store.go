// Package esstore is Vigil's Elasticsearch log store, used in the distributed
// mode: the ingester writes records with Write, the query layer reads them
// with Select, LabelNames, LabelValues and Series.
//
// Records go to daily indices <prefix>YYYY.MM.DD (UTC day of the record's
// timestamp) with ECS field names, so Kibana Discover reads them as they are.
// The document id is the record id, so a redelivered record is recognised as
// a duplicate. The index layout is described in docs/format/elasticsearch.md.
package esstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
)

// TLSOptions configures TLS to Elasticsearch.
type TLSOptions struct {
	// CAFile is a PEM file of certificate authorities to trust instead of
	// the system pool.
	CAFile string
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool
}

// Options configures a Store.
type Options struct {
	// URLs of Elasticsearch nodes, e.g. http://127.0.0.1:9200.
	URLs []string
	// Basic authentication, or an API key (base64 "id:key"), which wins.
	Username, Password, APIKey string
	TLS                        TLSOptions

	// IndexPrefix names the daily indices (<prefix>YYYY.MM.DD), the index
	// template and the ILM policy (the prefix without its trailing "-").
	IndexPrefix string
	// Retention deletes a daily index once all of its day is older than
	// this; 0 keeps everything.
	Retention time.Duration
	// Shards and Replicas of each daily index.
	Shards, Replicas int
	// RefreshInterval of each daily index; 0 keeps Elasticsearch's default
	// (1s). Larger values index faster and show new lines later.
	RefreshInterval time.Duration

	// BulkMaxDocs and BulkMaxBytes bound one bulk request.
	BulkMaxDocs, BulkMaxBytes int
	// BulkConcurrency is how many bulk requests of one Write run at once.
	BulkConcurrency int
	// MaxAttempts bounds the tries of one bulk request (whole-request
	// failures) and of one item (429 and 5xx item statuses).
	MaxAttempts int
	// RetryBase and RetryMax shape the exponential backoff (full jitter).
	RetryBase, RetryMax time.Duration
	// StartTimeout bounds how long Open waits for the cluster.
	StartTimeout time.Duration
	// SearchPageSize is how many hits Select fetches per request.
	SearchPageSize int

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Rejected receives each record Elasticsearch refused permanently (a
	// mapping or parse error, a document too large), with Elasticsearch's
	// reason; the ingester sends it to the dead-letter topic. When Rejected
	// is nil, such a record makes Write fail. An error from Rejected makes
	// Write fail.
	Rejected func(ctx context.Context, rec model.LogRecord, reason string) error
}

// DefaultOptions returns options for a local single-node cluster.
func DefaultOptions() Options {
	return Options{
		URLs:            []string{"http://127.0.0.1:9200"},
		IndexPrefix:     "vigil-logs-",
		Retention:       7 * 24 * time.Hour,
		Shards:          1,
		Replicas:        1,
		BulkMaxDocs:     5000,
		BulkMaxBytes:    8 << 20,
		BulkConcurrency: 2,
		MaxAttempts:     8,
		RetryBase:       100 * time.Millisecond,
		RetryMax:        10 * time.Second,
		StartTimeout:    2 * time.Minute,
		SearchPageSize:  1000,
		Logger:          slog.Default(),
	}
}

// Store reads and writes log records in Elasticsearch. It is safe for
// concurrent use.
type Store struct {
	opts      Options
	logger    *slog.Logger
	es        *elasticsearch.Client
	transport *http.Transport
	m         *metrics
	name      string // template and ILM policy name
	ilm       bool
}

// Open connects to Elasticsearch, waits (at most opts.StartTimeout) until
// the cluster is at least yellow, installs the index template and, when the
// cluster has ILM, the retention policy.
func Open(ctx context.Context, opts Options) (*Store, error) {
	def := DefaultOptions()
	if len(opts.URLs) == 0 {
		opts.URLs = def.URLs
	}
	if opts.IndexPrefix == "" {
		opts.IndexPrefix = def.IndexPrefix
	}
	if err := checkPrefix(opts.IndexPrefix); err != nil {
		return nil, err
	}
	setDefault(&opts.Shards, def.Shards)
	if opts.Replicas < 0 {
		opts.Replicas = 0
	}
	setDefault(&opts.BulkMaxDocs, def.BulkMaxDocs)
	setDefault(&opts.BulkMaxBytes, def.BulkMaxBytes)
	setDefault(&opts.BulkConcurrency, def.BulkConcurrency)
	setDefault(&opts.MaxAttempts, def.MaxAttempts)
	setDefault(&opts.SearchPageSize, def.SearchPageSize)
	if opts.RetryBase <= 0 {
		opts.RetryBase = def.RetryBase
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = def.RetryMax
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = def.StartTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.BulkConcurrency + 4
	cfg := elasticsearch.Config{
		Addresses:    opts.URLs,
		Username:     opts.Username,
		Password:     opts.Password,
		APIKey:       opts.APIKey,
		DisableRetry: true, // Write and the query paths retry themselves, with backoff and jitter
		Transport:    tr,
	}
	if opts.TLS.CAFile != "" || opts.TLS.InsecureSkipVerify {
		tc := &tls.Config{InsecureSkipVerify: opts.TLS.InsecureSkipVerify} //nolint:gosec // explicit test-only option
		if opts.TLS.CAFile != "" {
			pem, err := os.ReadFile(opts.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read Elasticsearch CA file: %w", err)
			}
			pool, err := certPool(pem)
			if err != nil {
				return nil, fmt.Errorf("Elasticsearch CA file %s: %w", opts.TLS.CAFile, err)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create Elasticsearch client for %v: %w", opts.URLs, err)
	}
	s := &Store{
		opts:      opts,
		logger:    opts.Logger,
		es:        es,
		transport: tr,
		m:         newMetrics(opts.Registerer),
		name:      strings.TrimRight(opts.IndexPrefix, "-_."),
	}
	if err := s.waitForCluster(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.detectILM(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.installTemplate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.logger.Info("elasticsearch log store ready", "urls", opts.URLs, "index_prefix", opts.IndexPrefix, "ilm", s.ilm, "retention", opts.Retention)
	return s, nil
}

func setDefault(p *int, v int) {
	if *p <= 0 {
		*p = v
	}
}

// checkPrefix rejects prefixes Elasticsearch would refuse as index names or
// that would make the index pattern match foreign indices.
func checkPrefix(p string) error {
	if p != strings.ToLower(p) || strings.ContainsAny(p, `\/*?"<>| ,#:`) || strings.HasPrefix(p, "_") ||
		strings.HasPrefix(p, "-") || strings.HasPrefix(p, "+") || strings.HasPrefix(p, ".") {
		return fmt.Errorf("index prefix %q: must be lower case, must not start with _ - + . and must not contain \\ / * ? \" < > | , # : or spaces", p)
	}
	return nil
}

// waitForCluster polls the cluster health until it is yellow or green. GET /
// is not used: some distributions answer it with 405.
func (s *Store) waitForCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
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
			return fmt.Errorf("Elasticsearch at %v not ready within %s: %w (check --es.urls and that the cluster is up)", s.opts.URLs, s.opts.StartTimeout, last)
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

// ILM reports whether the cluster has index lifecycle management, in which
// case retention is an ILM policy instead of Run's own index deletion.
func (s *Store) ILM() bool { return s.ilm }

// Refresh makes everything written so far visible to searches. Write does
// not need it for durability; tests and tools call it.
func (s *Store) Refresh(ctx context.Context) error {
	status, body, err := s.do(ctx, http.MethodPost, "/"+s.opts.IndexPrefix+"*/_refresh?allow_no_indices=true&ignore_unavailable=true", nil, "")
	if err != nil {
		return fmt.Errorf("cannot refresh %s*: %w", s.opts.IndexPrefix, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("cannot refresh %s*: status %d: %s", s.opts.IndexPrefix, status, snippet(body))
	}
	return nil
}

// do sends one request and reads the whole response. err is set only when
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

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	const max = 512
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
