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
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// URL receives one POST per new issue or regression.
	URL string
	// IssueURL, when set, is the prefix of a link to an issue in the
	// message: IssueURL + issue id.
	IssueURL string
	// QueueSize bounds the notifications waiting for delivery; more are
	// dropped and counted.
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
// incoming-webhook {"text": …} plus structured fields (docs/dumps.md). It
// queues in memory, bounded, and delivers on Run's goroutine, so the
// ingester never waits for it.
type Webhook struct {
	opts                                  WebhookOptions
	queue                                 chan storage.IssueChange
	sent, failedAttempts, dropped, gaveUp prometheus.Counter
	// backoff is the wait before a retry; tests shorten it.
	backoff backoff.Backoff
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
		queue:          make(chan storage.IssueChange, opts.QueueSize),
		sent:           c("webhook_sent_total", "Notifications of new issues and regressions the webhook accepted (2xx)."),
		failedAttempts: c("webhook_errors_total", "Failed webhook deliveries (network errors and non-2xx answers); retried up to the attempt limit."),
		gaveUp:         c("webhook_given_up_total", "Notifications not delivered after the last attempt, or refused with a 4xx."),
		dropped:        c("webhook_dropped_total", "Notifications dropped because the webhook queue was full."),
		backoff:        backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.sent, w.failedAttempts, w.gaveUp, w.dropped)
	}
	return w
}

// Notify queues the changes for delivery; when the queue is full they are
// dropped and counted. It never blocks.
func (w *Webhook) Notify(changes []storage.IssueChange) {
	for _, c := range changes {
		select {
		case w.queue <- c:
		default:
			w.dropped.Inc()
			w.opts.Logger.Warn("webhook queue full; dropping a notification", "kind", c.Kind, "issue", c.Issue.ID, "queue_size", w.opts.QueueSize)
		}
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-w.queue:
			w.deliver(ctx, c)
		}
	}
}

// deliver posts one notification, retrying.
func (w *Webhook) deliver(ctx context.Context, c storage.IssueChange) {
	body, err := json.Marshal(w.payload(c))
	if err != nil {
		w.gaveUp.Inc()
		return
	}
	b := w.backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, body)
		if err == nil {
			w.sent.Inc()
			return
		}
		w.failedAttempts.Inc()
		if !retry || attempt >= w.opts.MaxAttempts || ctx.Err() != nil {
			w.gaveUp.Inc()
			w.opts.Logger.Warn("cannot deliver an issue notification to the webhook", "kind", c.Kind, "issue", c.Issue.ID, "attempts", attempt, "err", err)
			return
		}
		if backoff.Sleep(ctx, b.Next()) != nil {
			w.gaveUp.Inc()
			return
		}
	}
}

// post sends body once; retry says whether another attempt may succeed.
func (w *Webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
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
	Text  string       `json:"text"`
	Kind  string       `json:"kind"` // "new" or "regression"
	Issue WebhookIssue `json:"issue"`
	Event WebhookEvent `json:"event"`
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

func (w *Webhook) payload(c storage.IssueChange) WebhookPayload {
	is, ev := c.Issue, c.Event
	url := ""
	if w.opts.IssueURL != "" {
		url = w.opts.IssueURL + is.ID
	}
	var text strings.Builder
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
		Text: text.String(), Kind: string(c.Kind),
		Issue: WebhookIssue{ID: is.ID, Title: is.Title, Culprit: is.Culprit, Service: is.Service, Project: is.Project, Grade: is.Grade,
			Level: is.Level, Status: string(is.Status), Count: is.Count, FirstSeen: rfc3339(is.FirstSeen), LastSeen: rfc3339(is.LastSeen),
			Releases: is.Releases, URL: url},
		Event: WebhookEvent{EventID: ev.EventID, Timestamp: rfc3339(ev.Timestamp), Release: ev.Release, Environment: ev.Environment,
			Host: ev.ServerName, TraceID: ev.TraceID},
	}
}
