package federation

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/rules"
)

// ruleEngine evaluates the configuration's rule_files (recording and
// alerting rules) and sends firing alerts to the alerting.alertmanagers of
// the configuration.
type ruleEngine struct {
	manager  *rules.Manager
	notifier *notifier.Manager
	notifyD  *discovery.Manager
	external *url.URL
}

func (f *Federation) newRules(ctx context.Context, sdMetrics *discovery.SDMetrics) error {
	o := f.o
	f.rules.external = f.external
	f.rules.notifier = notifier.NewManager(&notifier.Options{
		QueueCapacity: 10_000,
		Registerer:    o.Registerer,
	}, f.cfg.GlobalConfig.MetricNameValidationScheme, o.Logger.With("component", "notifier"))
	f.rules.notifyD = discovery.NewManager(ctx, o.Logger.With("component", "discovery", "of", "notify"), o.Registerer, sdMetrics, discovery.Name("notify"), f.sdLimit.option())
	if f.rules.notifyD == nil {
		return fmt.Errorf("cannot create the alertmanager discovery manager")
	}
	f.rules.manager = rules.NewManager(&rules.ManagerOptions{
		NameValidationScheme: f.cfg.GlobalConfig.MetricNameValidationScheme,
		ExternalURL:          f.rules.external,
		QueryFunc:            perTenantQueryFunc(f.engine, f.fanout),
		NotifyFunc:           rules.SendAlerts(f.rules.notifier, f.rules.external.String()),
		Context:              ctx,
		AppendableV2:         f.fanout,
		Queryable:            f.db,
		Logger:               o.Logger.With("component", "rules"),
		Registerer:           o.Registerer,
		OutageTolerance:      time.Hour,
		ForGracePeriod:       10 * time.Minute,
		ResendDelay:          time.Minute,
		DefaultRuleQueryOffset: func() time.Duration {
			return time.Duration(f.Config().GlobalConfig.RuleQueryOffset)
		},
	})
	return nil
}

// apply loads c's rule files and alertmanagers.
func (r *ruleEngine) apply(c *config.Config) error {
	if err := r.notifier.ApplyConfig(c); err != nil {
		return fmt.Errorf("alerting: %w", err)
	}
	am := make(map[string]discovery.Configs)
	for k, v := range c.AlertingConfig.AlertmanagerConfigs.ToMap() {
		am[k] = v.ServiceDiscoveryConfigs
	}
	if err := r.notifyD.ApplyConfig(am); err != nil {
		return fmt.Errorf("alerting.alertmanagers: %w", err)
	}
	var files []string
	for _, pat := range c.RuleFiles {
		m, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("rule_files %q: %w", pat, err)
		}
		files = append(files, m...)
	}
	if err := r.manager.Update(time.Duration(c.GlobalConfig.EvaluationInterval), files,
		c.GlobalConfig.ExternalLabels, r.external.String(), nil); err != nil {
		return fmt.Errorf("rule_files: %w", err)
	}
	return nil
}

func (r *ruleEngine) run(wg *sync.WaitGroup) {
	wg.Go(func() { _ = r.notifyD.Run() })
	wg.Go(func() { r.notifier.Run(r.notifyD.SyncCh()) })
	wg.Go(r.manager.Run)
}

func (r *ruleEngine) stop() {
	r.manager.Stop()
	r.notifier.Stop()
}
