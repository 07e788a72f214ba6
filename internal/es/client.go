// Package es is the Elasticsearch plumbing Vigil's Elasticsearch stores
// share: the client (addresses, basic auth or API key, TLS), raw requests,
// waiting for the cluster at start, bulk writes that resend only the items
// that failed transiently, and retention of daily indices. What is stored,
// and how it is mapped and searched, is the stores' own (internal/esstore
// for logs, internal/esspanstore for spans).
package es

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// TLSOptions configures TLS to Elasticsearch.
type TLSOptions struct {
	// CAFile is a PEM file of certificate authorities to trust instead of
	// the system pool.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// clusters that require one.
	CertFile, KeyFile string
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool
}

// ClientOptions says where Elasticsearch is and how to log in. The stores'
// Options embed it.
type ClientOptions struct {
	// URLs of Elasticsearch nodes, e.g. http://127.0.0.1:9200.
	URLs []string
	// Basic authentication, or an API key (base64 "id:key"), which wins.
	Username, Password, APIKey string
	// PasswordFile and APIKeyFile hold the password or the API key when
	// Password or APIKey is empty; a trailing newline is ignored.
	PasswordFile, APIKeyFile string
	TLS                      TLSOptions
	// Write shapes the circuit breaker and the dynamic timeout of the
	// store's bulk requests (NewBulkPolicy).
	Write WriteResilience
}

// secret returns value, or the content of file when value is empty.
func secret(value, file, what string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file) // #nosec G304 -- a secret file the operator configured (--es.*-file)
	if err != nil {
		return "", fmt.Errorf("cannot read the Elasticsearch %s file: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Client sends requests to Elasticsearch. It is safe for concurrent use.
type Client struct {
	urls      []string
	logger    *slog.Logger
	es        *elasticsearch.Client
	transport *http.Transport
}

// NewClient makes a client for opts.URLs; it sends nothing. The client does
// not retry: its callers retry with backoff and jitter (BulkWriter, Backoff).
func NewClient(opts ClientOptions, logger *slog.Logger) (*Client, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("no Elasticsearch URL: set --es.urls")
	}
	if logger == nil {
		logger = slog.Default()
	}
	password, err := secret(opts.Password, opts.PasswordFile, "password")
	if err != nil {
		return nil, err
	}
	apiKey, err := secret(opts.APIKey, opts.APIKeyFile, "API key")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := tlsconfig.ClientFiles{CAFile: opts.TLS.CAFile, CertFile: opts.TLS.CertFile, KeyFile: opts.TLS.KeyFile,
		InsecureSkipVerify: opts.TLS.InsecureSkipVerify}.Config()
	if err != nil {
		//lint:ignore ST1005 it begins with the name Elasticsearch
		return nil, fmt.Errorf("Elasticsearch TLS: %w", err)
	}
	tr.TLSClientConfig = tc
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:    opts.URLs,
		Username:     opts.Username,
		Password:     password,
		APIKey:       apiKey,
		DisableRetry: true,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create Elasticsearch client for %v: %w", opts.URLs, err)
	}
	return &Client{urls: opts.URLs, logger: logger, es: es, transport: tr}, nil
}

// SetMaxIdleConnsPerHost sets how many idle connections to each node are
// kept for reuse (Go's default is 2); a writer sending n bulk requests at
// once wants a few more than n. Call it before the first request.
func (c *Client) SetMaxIdleConnsPerHost(n int) { c.transport.MaxIdleConnsPerHost = n }

// URLs returns the addresses the client was made with, for messages.
func (c *Client) URLs() []string { return c.urls }

// Close releases the client's connections. Closing twice is harmless.
func (c *Client) Close() error {
	err := c.es.Close(context.Background())
	c.transport.CloseIdleConnections()
	if errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		err = nil
	}
	return err
}

// Do sends one request to path (with its query string) and reads the whole
// response. A body is sent as contentType, application/json when empty. err
// is set only when no response arrived; any status is returned as it is.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, contentType string) (status int, resp []byte, err error) {
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
	res, err := c.es.Perform(req)
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
