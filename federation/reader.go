package federation

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/vigilhq/vigil/internal/auth"
)

// Reader reads a federation from another process (the standalone query
// daemon): its Prometheus HTTP API is proxied as it is, and a local PromQL
// engine over remote read (the federation's /api/v1/read, with Prometheus'
// own client) serves those who evaluate PromQL in-process, such as Jaeger's
// monitoring API. Proxying keeps the API's answers exactly the
// federation's; remote read moves only the raw samples a query selects.
type Reader struct {
	base      *url.URL
	proxy     http.Handler
	engine    *promql.Engine
	queryable storage.SampleAndChunkQueryable
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// URL is the federation's base URL, http://federation:9095.
	URL string
	// QueryTimeout bounds one PromQL query and one remote read;
	// LookbackDelta is the federation's.
	QueryTimeout  time.Duration
	LookbackDelta time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// NewReader checks o.URL and builds the proxy, the remote-read client and
// the engine; nothing is contacted until a query.
func NewReader(o ReaderOptions) (*Reader, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("federation URL %q: want http(s)://host:port, such as http://federation:9095", o.URL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := DefaultOptions()
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = d.QueryTimeout
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = d.LookbackDelta
	}
	rc, err := remote.NewReadClient("federation", &remote.ClientConfig{
		URL:              &config_util.URL{URL: u.JoinPath("api/v1/read")},
		Timeout:          model.Duration(o.QueryTimeout),
		ChunkedReadLimit: config.DefaultChunkedReadLimit,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot build the remote-read client of %s: %w", o.URL, err)
	}
	if c, ok := rc.(*remote.Client); ok {
		// The federation reads as the tenant of the query: it must trust
		// this daemon as a proxy (trusted_proxies in its --auth.config).
		c.Client.Transport = tenantHeader{c.Client.Transport}
	}
	r := &Reader{base: u}
	r.queryable = remote.NewSampleAndChunkQueryableClient(rc, labels.EmptyLabels(), nil, true,
		func() (int64, error) { return 0, nil })
	r.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger.With("component", "promql"),
		Reg:                  o.Registerer,
		MaxSamples:           d.MaxSamples,
		Timeout:              o.QueryTimeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("cannot reach the federation at %s (--query.metrics-url): %v", o.URL, err), http.StatusBadGateway)
		},
	}
	r.proxy = rp
	return r, nil
}

// RegisterHTTP serves the federation's Prometheus API under /api/v1/ on
// mux, by proxy.
func (r *Reader) RegisterHTTP(mux *http.ServeMux) { mux.Handle("/api/v1/", r.proxy) }

// Engine evaluates PromQL over Queryable.
func (r *Reader) Engine() *promql.Engine { return r.engine }

// Queryable reads the federation's samples by remote read.
func (r *Reader) Queryable() storage.Queryable { return r.queryable }

// tenantHeader sends, with a remote-read request made for an authenticated
// query, the query's tenant as X-Scope-OrgID.
type tenantHeader struct{ next http.RoundTripper }

func (t tenantHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	if id, ok := auth.FromContext(r.Context()); ok && id.Tenant != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Scope-OrgID", id.Tenant)
	}
	return t.next.RoundTrip(r)
}
