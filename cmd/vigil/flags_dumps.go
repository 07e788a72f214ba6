package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/dumps"
	"github.com/vigilhq/vigil/dumps/api"
	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/config"
)

// Flags of the dumps signal: the ingester's webhook (new issues and
// regressions) and the query port's Sentry web API (tokens, organization).

type dumpsFlags struct {
	webhookURL *string
	issueURL   *string
	tokens     config.StringList
	org        *string
}

func addDumpsFlags(fs *flag.FlagSet) *dumpsFlags {
	d := api.DefaultOptions()
	f := &dumpsFlags{
		webhookURL: fs.String("dumps.webhook-url", "", "URL that receives a POST (Slack-compatible JSON) for each new issue and regression of every tenant without a dumps_webhook_url of its own in --auth.config; empty sends none"),
		issueURL:   fs.String("dumps.webhook-issue-url", "", "prefix of the issue link in webhook messages (the issue id is appended), e.g. http://vigil:16686/vigil/api/v1/dumps/issues/"),
		org:        fs.String("dumps.org", d.Org, "slug of the one organization of the Sentry web API"),
	}
	fs.Var(&f.tokens, "dumps.tokens", "Bearer tokens accepted by the Sentry web API on the query port, comma-separated; empty asks for none")
	return f
}

// webhook returns the webhook of the flags, or nil when none is set.
func (f *dumpsFlags) webhook(a *auth.Authenticator, logger *slog.Logger, reg prometheus.Registerer) (*dumps.Webhook, error) {
	if *f.webhookURL == "" && a == nil {
		return nil, nil
	}
	if u, err := url.Parse(*f.webhookURL); *f.webhookURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return nil, fmt.Errorf("--dumps.webhook-url %q: want an http or https URL", *f.webhookURL)
	}
	o := dumps.DefaultWebhookOptions(*f.webhookURL)
	if a != nil {
		// A tenant's dumps_webhook_url in --auth.config, read at each
		// notification, so a reload applies.
		o.URLFor = a.DumpsWebhookURL
	}
	o.IssueURL = *f.issueURL
	o.Logger, o.Registerer = logger, reg
	return dumps.NewWebhook(o), nil
}

// apiOptions returns the options of the dumps query API.
func (f *dumpsFlags) apiOptions() api.Options {
	o := api.DefaultOptions()
	o.Org, o.Tokens = *f.org, f.tokens
	return o
}
