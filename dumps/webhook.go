package dumps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/backoff"
	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// IssueGrouper is Group as the ingester's Grouper.
type IssueGrouper struct{}

// Group returns the issue id, title and culprit of d (see Group).
func (IssueGrouper) Group(d *model.Dump) (issueID, title, culprit string) {
	g := Group(d)
	return g.IssueID, g.Title, g.Culprit
}

// WebhookOptions configures a Webhook.
type WebhookOptions struct {
	// URL receives one POST per new issue or regression of every tenant
	// that has no webhook of its own; "" notifies those tenants nowhere.
	URL string
	// URLFor, when set, returns the URL of a tenant's own webhook, ""
	// when it has none. It is asked at each notification, so a change of
	// the configuration it reads applies to the next one.
	URLFor func(tenant string) string
	// IssueURL, when set, is the prefix of a link to an issue in the
	// message: IssueURL + issue id.
	IssueURL string
	// QueueSize bounds the notifications waiting for delivery to one URL;
	// more are dropped and counted.
	QueueSize int
	// MaxAttempts bounds the deliveries of one notification (5xx, 429,
	// network errors are retried with backoff; other 4xx are not).
	MaxAttempts int
	// Timeout bounds one delivery.
	Timeout time.Duration

	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultWebhookOptions returns options that suit a chat webhook.
func DefaultWebhookOptions(url string) WebhookOptions {
	return WebhookOptions{URL: url, QueueSize: 1000, MaxAttempts: 5, Timeout: 10 * time.Second, Logger: slog.Default()}
}

// Webhook posts new issues and regressions to a URL as JSON: Slack's
// incoming-webhook {"text": …} plus structured fields (docs/dumps.md),
// to the tenant's own URL when it has one. It queues in memory, bounded,
// one queue and one delivering goroutine per URL, so the ingester never
// waits for it and a URL that is slow or down delays only its own
// notifications.
type Webhook struct {
	opts WebhookOptions

	mu      sync.Mutex
	queues  map[string]chan notification // by URL
	runCtx  context.Context              // Run's, once it runs
	stopped bool                         // Run's context ended
	run     sync.WaitGroup

	sent, failedAttempts, dropped, gaveUp prometheus.Counter
	// backoff is the wait before a retry; idle how long a URL's delivery
	// goroutine waits for work before it ends. Tests shorten them.
	backoff backoff.Backoff
	idle    time.Duration
}

// NewWebhook returns a webhook; Run delivers.
func NewWebhook(opts WebhookOptions) *Webhook {
	d := DefaultWebhookOptions(opts.URL)
	if opts.QueueSize <= 0 {
		opts.QueueSize = d.QueueSize
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = d.MaxAttempts
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = d.Logger
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "vigil", Subsystem: "dumps", Name: name, Help: help})
	}
	w := &Webhook{
		opts:           opts,
		queues:         map[string]chan notification{},
		sent:           c("webhook_sent_total", "Notifications of new issues and regressions the webhook accepted (2xx)."),
		failedAttempts: c("webhook_errors_total", "Failed webhook deliveries (network errors and non-2xx answers); retried up to the attempt limit."),
		gaveUp:         c("webhook_given_up_total", "Notifications not delivered after the last attempt, or refused with a 4xx."),
		dropped:        c("webhook_dropped_total", "Notifications dropped because the webhook queue was full."),
		backoff:        backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2},
		idle:           webhookIdle,
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.sent, w.failedAttempts, w.gaveUp, w.dropped)
	}
	return w
}

// notification is a change of a tenant's issues.
type notification struct {
	tenant string
	storage.IssueChange
}

// webhookIdle is how long a URL's delivery goroutine waits for a
// notification before it ends; a tenant's next notification starts
// another. So a URL that no tenant uses any more (its dumps_webhook_url
// changed) holds nothing.
const webhookIdle = 10 * time.Minute

// Notify queues the changes of tenant's issues for delivery to its URL;
// when that URL's queue is full they are dropped and counted. It never
// blocks.
func (w *Webhook) Notify(tenant string, changes []storage.IssueChange) {
	url := w.opts.URL
	if w.opts.URLFor != nil {
		if u := w.opts.URLFor(tenant); u != "" {
			url = u
		}
	}
	if url == "" {
		return
	}
	// Queued under mu, so that a delivery goroutine that ends when idle
	// (and drops its queue) never leaves a notification behind.
	w.mu.Lock()
	defer w.mu.Unlock()
	q, ok := w.queues[url]
	if !ok {
		q = make(chan notification, w.opts.QueueSize)
		w.queues[url] = q
		if w.runCtx != nil && !w.stopped {
			w.deliverAll(url, q)
		}
	}
	for _, c := range changes {
		select {
		case q <- notification{tenant, c}:
		default:
			w.dropped.Inc()
			w.opts.Logger.Warn("webhook queue full; dropping a notification", "tenant", tenant, "kind", c.Kind, "issue", c.Issue.ID, "queue_size", w.opts.QueueSize)
		}
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	w.mu.Lock()
	w.runCtx = ctx
	for url, q := range w.queues {
		w.deliverAll(url, q)
	}
	w.mu.Unlock()
	<-ctx.Done()
	// No goroutine starts once stopped is set (Notify checks it under
	// mu), so the wait below sees every one.
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.run.Wait()
	return nil
}

// deliverAll delivers the notifications of q to url, one at a time, until
// Run's context ends or q stays empty for webhookIdle; the caller holds mu.
func (w *Webhook) deliverAll(url string, q chan notification) {
	ctx := w.runCtx
	w.run.Go(func() {
		idle := time.NewTimer(w.idle)
		defer idle.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-q:
				w.deliver(ctx, url, n)
				idle.Reset(w.idle)
			case <-idle.C:
				w.mu.Lock()
				if len(q) == 0 {
					delete(w.queues, url)
					w.mu.Unlock()
					return
				}
				w.mu.Unlock()
				idle.Reset(w.idle)
			}
		}
	})
}

// deliver posts one notification, retrying.
func (w *Webhook) deliver(ctx context.Context, url string, c notification) {
	body, err := json.Marshal(w.payload(c))
	if err != nil {
		w.gaveUp.Inc()
		return
	}
	b := w.backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, url, body)
		if err == nil {
			w.sent.Inc()
			return
		}
		w.failedAttempts.Inc()
		if !retry || attempt >= w.opts.MaxAttempts || ctx.Err() != nil {
			w.gaveUp.Inc()
			w.opts.Logger.Warn("cannot deliver an issue notification to the webhook", "tenant", c.tenant, "kind", c.Kind, "issue", c.Issue.ID, "attempts", attempt, "err", err)
			return
		}
		if backoff.Sleep(ctx, b.Next()) != nil {
			w.gaveUp.Inc()
			return
		}
	}
}

// post sends body once; retry says whether another attempt may succeed.
func (w *Webhook) post(ctx context.Context, url string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-dumps-webhook")
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return true, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_ = resp.Body.Close() // read to its end above; nothing is lost on a failed close
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return false, fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(msg))
}

// WebhookPayload is what the webhook posts: Slack's "text" and the
// structured fields.
type WebhookPayload struct {
	Text string `json:"text"`
	Kind string `json:"kind"` // "new" or "regression"
	// Tenant is the tenant whose issue it is; left out for the default
	// tenant (and so without --auth.config).
	Tenant string       `json:"tenant,omitempty"`
	Issue  WebhookIssue `json:"issue"`
	Event  WebhookEvent `json:"event"`
}

// WebhookIssue is the issue of a notification; times are RFC 3339.
type WebhookIssue struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Culprit   string   `json:"culprit,omitempty"`
	Service   string   `json:"service"`
	Project   string   `json:"project"`
	Grade     int      `json:"grade,omitempty"`
	Level     string   `json:"level"`
	Status    string   `json:"status"`
	Count     int64    `json:"count"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
	Releases  []string `json:"releases,omitempty"`
	URL       string   `json:"url,omitempty"`
}

// WebhookEvent is the event that caused a notification.
type WebhookEvent struct {
	EventID     string `json:"event_id"`
	Timestamp   string `json:"timestamp"`
	Release     string `json:"release,omitempty"`
	Environment string `json:"environment,omitempty"`
	Host        string `json:"host,omitempty"`
	TraceID     string `json:"trace_id,omitempty"`
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func (w *Webhook) payload(c notification) WebhookPayload {
	is, ev := c.Issue, c.Event
	tenant := c.tenant
	if tenant == auth.DefaultTenant {
		tenant = ""
	}
	url := ""
	if w.opts.IssueURL != "" {
		url = w.opts.IssueURL + is.ID
	}
	var text strings.Builder
	if tenant != "" {
		fmt.Fprintf(&text, "[%s] ", tenant)
	}
	if c.Kind == storage.IssueRegressed {
		text.WriteString("Regression in ")
	} else {
		text.WriteString("New issue in ")
	}
	fmt.Fprintf(&text, "%s", is.Service)
	if ev.Environment != "" {
		fmt.Fprintf(&text, " (%s)", ev.Environment)
	}
	fmt.Fprintf(&text, ": %s", is.Title)
	if is.Culprit != "" {
		fmt.Fprintf(&text, " in %s", is.Culprit)
	}
	if ev.Release != "" {
		fmt.Fprintf(&text, ", release %s", ev.Release)
	}
	if url != "" {
		fmt.Fprintf(&text, " <%s|issue %s>", url, is.ID)
	}
	return WebhookPayload{
		Text: text.String(), Kind: string(c.Kind), Tenant: tenant,
		Issue: WebhookIssue{ID: is.ID, Title: is.Title, Culprit: is.Culprit, Service: is.Service, Project: is.Project, Grade: is.Grade,
			Level: is.Level, Status: string(is.Status), Count: is.Count, FirstSeen: rfc3339(is.FirstSeen), LastSeen: rfc3339(is.LastSeen),
			Releases: is.Releases, URL: url},
		Event: WebhookEvent{EventID: ev.EventID, Timestamp: rfc3339(ev.Timestamp), Release: ev.Release, Environment: ev.Environment,
			Host: ev.ServerName, TraceID: ev.TraceID},
	}
}
