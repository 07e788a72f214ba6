// Package profiler is Vigil's profile intake: it scrapes the pprof
// endpoints of configured targets (pull) and takes the profiles clients
// push through Pyroscope's APIs (POST /ingest, push.v1.PusherService/Push),
// and publishes each profile to the profiles queue (docs/format/profiles.md). See docs/profiles.md.
package profiler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 16 << 20
	DefaultMaxDecodedBytes = 64 << 20
	DefaultConcurrency     = 8
)

// Options configure a Profiler.
type Options struct {
	// Config is the scrape configuration (LoadConfig); nil scrapes
	// nothing.
	Config *Config
	// MaxBodyBytes bounds a pushed request's body and, unless a scrape
	// config sets body_size_limit, a scraped profile.
	MaxBodyBytes int64
	// MaxDecodedBytes bounds a pushed profile once decompressed.
	MaxDecodedBytes int64
	// Concurrency bounds the scrapes in flight, over every target.
	Concurrency int
	// Client makes the scrapes; nil uses a client of its own. Its
	// CheckRedirect is replaced: redirects are followed on the same
	// scheme, host and port only.
	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	now func() time.Time
}

// DefaultOptions returns options that suit one machine.
func DefaultOptions() Options {
	return Options{MaxBodyBytes: DefaultMaxBodyBytes, MaxDecodedBytes: DefaultMaxDecodedBytes, Concurrency: DefaultConcurrency}
}

// Profiler scrapes and receives profiles and publishes them to a queue.
type Profiler struct {
	opts Options
	log  *slog.Logger
	q    queue.Producer
	m    *metrics
	sem  chan struct{}
}

// New returns a profiler publishing to q.
func New(opts Options, q queue.Producer) *Profiler {
	d := DefaultOptions()
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = d.MaxBodyBytes
	}
	if opts.MaxDecodedBytes <= 0 {
		opts.MaxDecodedBytes = d.MaxDecodedBytes
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = d.Concurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4,
			ResponseHeaderTimeout: 0, DisableCompression: true,
		}}
	}
	// Scrapes and discovery follow redirects on their target only, whoever
	// built the client.
	c := *opts.Client
	c.CheckRedirect = sameTarget
	opts.Client = &c
	if opts.now == nil {
		opts.now = time.Now
	}
	return &Profiler{opts: opts, log: opts.Logger, q: q, m: newMetrics(opts.Registerer), sem: make(chan struct{}, opts.Concurrency)}
}

// RegisterHTTP registers the push endpoints on mux: Pyroscope's
// POST /ingest and the connect procedure push.v1.PusherService/Push.
func (p *Profiler) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("/ingest", p.handleIngest)
	p.registerPush(mux)
}

// Run scrapes the configured targets until ctx ends.
func (p *Profiler) Run(ctx context.Context) error {
	if p.opts.Config == nil || len(p.opts.Config.ScrapeConfigs) == 0 {
		<-ctx.Done()
		return nil
	}
	return p.runScrapes(ctx)
}

func (p *Profiler) handleIngest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.m.ingest.WithLabelValues("bad_request").Inc()
		http.Error(w, "/ingest: method "+r.Method+" not allowed, want POST", http.StatusMethodNotAllowed)
		return
	}
	req, err := parseIngest(r, p.opts.MaxBodyBytes, p.opts.MaxDecodedBytes, p.opts.now())
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			result := "bad_request"
			if br.status == http.StatusRequestEntityTooLarge {
				result = "too_large"
			}
			p.m.ingest.WithLabelValues(result).Inc()
			http.Error(w, "/ingest: "+br.msg, br.status)
			return
		}
		p.m.ingest.WithLabelValues("error").Inc()
		http.Error(w, "/ingest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	pr := newIngestedProfile(req)
	if err := pr.Validate(); err != nil {
		p.m.ingest.WithLabelValues("bad_request").Inc()
		http.Error(w, "/ingest: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := p.publish(r.Context(), &pr); err != nil {
		switch {
		case errors.Is(err, queue.ErrFull):
			p.m.ingest.WithLabelValues("queue_full").Inc()
			w.Header().Set("Retry-After", "5")
			http.Error(w, "/ingest: the profiles queue is full, retry later", http.StatusTooManyRequests)
		case errors.Is(err, queue.ErrTooLarge):
			p.m.ingest.WithLabelValues("too_large").Inc()
			http.Error(w, "/ingest: "+err.Error(), http.StatusRequestEntityTooLarge)
		default:
			p.m.ingest.WithLabelValues("error").Inc()
			p.log.Warn("cannot publish a pushed profile", "err", err)
			http.Error(w, "/ingest: cannot queue the profile: "+err.Error(), http.StatusServiceUnavailable)
		}
		return
	}
	p.m.ingest.WithLabelValues("accepted").Inc()
	p.m.profiles.WithLabelValues("push", pr.Type).Inc()
	w.WriteHeader(http.StatusOK)
}

// newIngestedProfile is the profile of a parsed ingest request.
func newIngestedProfile(req *ingestRequest) model.Profile {
	return model.NewProfile(req.typ, req.labels, req.from, req.until-req.from, req.pprof)
}

// publish queues one profile; it returns once the queue holds it durably.
func (p *Profiler) publish(ctx context.Context, pr *model.Profile) error {
	r, err := p.record(pr)
	if err != nil {
		return err
	}
	return p.q.Publish(ctx, r.Key, r.Value)
}

// record is the queue record of pr, or an error wrapping queue.ErrTooLarge
// when it is larger than the queue can carry (Kafka's message size limit
// behind a spool): such a record would be spooled and never forwarded.
func (p *Profiler) record(pr *model.Profile) (queue.Record, error) {
	r := queue.Record{Key: string(model.ProfileRecordKey(pr)), Value: model.AppendProfileRecord(nil, pr)}
	if limit := queue.MaxMessageBytes(p.q); limit > 0 && len(r.Key)+len(r.Value) > limit {
		return r, fmt.Errorf("%w: a %s profile of %d bytes is larger than the queue's message limit of %d bytes (Kafka: the topic's max.message.bytes)",
			queue.ErrTooLarge, pr.Type, len(pr.Pprof), limit)
	}
	return r, nil
}

type metrics struct {
	ingest       *prometheus.CounterVec
	push         *prometheus.CounterVec
	profiles     *prometheus.CounterVec
	up           *prometheus.GaugeVec
	scrapeErrors *prometheus.CounterVec
	scrapes      *prometheus.CounterVec
	scrapeBytes  *prometheus.CounterVec
	targets      *prometheus.GaugeVec
	sdErrors     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	ns, sub := "vigil", "profiler"
	m := &metrics{
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ingest_requests_total",
			Help: "Requests to POST /ingest by result: accepted, bad_request, too_large, queue_full, error."}, []string{"result"}),
		push: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "push_requests_total",
			Help: "Calls of push.v1.PusherService/Push by result: accepted, bad_request, too_large, queue_full, error."}, []string{"result"}),
		profiles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "profiles_total",
			Help: "Profiles published to the queue, by source (scrape, push) and type."}, []string{"source", "type"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "target_up",
			Help: "1 when the last scrape of this target's profile type succeeded, 0 when it failed."}, []string{"job", "instance", "type"}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "scrape_errors_total",
			Help: "Failed scrapes by target, type and reason: connect, status, timeout, too_large, invalid, queue, redirect (a redirect off the target, refused)."}, []string{"job", "instance", "type", "reason"}),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "scrapes_total",
			Help: "Scrapes attempted, by target and type."}, []string{"job", "instance", "type"}),
		scrapeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "scraped_bytes_total",
			Help: "pprof bytes scraped and published, by job."}, []string{"job"}),
		targets: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "targets",
			Help: "Targets discovered, by job."}, []string{"job"}),
		sdErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "discovery_errors_total",
			Help: "Failed target discoveries (file_sd_configs, http_sd_configs), by job and mechanism; the last good targets are kept."}, []string{"job", "mechanism"}),
	}
	for _, r := range []string{"accepted", "bad_request", "too_large", "queue_full", "error"} {
		m.ingest.WithLabelValues(r)
		m.push.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.ingest, m.push, m.profiles, m.up, m.scrapeErrors, m.scrapes, m.scrapeBytes, m.targets, m.sdErrors)
	}
	return m
}
