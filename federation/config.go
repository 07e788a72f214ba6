package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	promhttpsd "github.com/prometheus/prometheus/discovery/http"
)

// LoadConfig reads a Prometheus configuration file: global, scrape_configs
// (static_configs, file_sd_configs, http_sd_configs), rule_files,
// remote_write and alerting. Any other service discovery is refused by name.
func LoadConfig(path string) (*config.Config, error) {
	c, err := config.LoadFile(path, false, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (service discovery: static_configs, file_sd_configs and http_sd_configs only)", path, err)
	}
	return c, nil
}

// load reads the configuration file, or returns Prometheus' defaults when
// there is none, with a hash of what it read and of the rule files.
func (f *Federation) load() (*config.Config, string, error) {
	var c *config.Config
	var err error
	h := sha256.New()
	if f.o.ConfigFile == "" {
		c, err = config.Load("", nil)
	} else {
		c, err = LoadConfig(f.o.ConfigFile)
		b, _ := os.ReadFile(f.o.ConfigFile)
		h.Write(b)
	}
	if err != nil {
		return nil, "", err
	}
	if err := inlineScrapeConfigFiles(c); err != nil {
		return nil, "", err
	}
	applyScrapeDefaults(c)
	c.RuleFiles = append(c.RuleFiles, f.o.RuleFiles...)
	for _, pat := range c.RuleFiles {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			b, _ := os.ReadFile(file) // #nosec G304 -- rule files the operator listed in the config
			h.Write([]byte(file))
			h.Write(b)
		}
	}
	return c, hex.EncodeToString(h.Sum(nil)), nil
}

// apply hands c to every manager, in Prometheus' order.
func (f *Federation) apply(c *config.Config) error {
	var err error
	if e := f.remote.ApplyConfig(c); e != nil {
		err = errors.Join(err, fmt.Errorf("remote_write: %w", e))
	}
	if e := f.scrapes.ApplyConfig(c); e != nil {
		err = errors.Join(err, fmt.Errorf("scrape_configs: %w", e))
	} else {
		sc, e := c.GetScrapeConfigs()
		if e != nil {
			err = errors.Join(err, e)
		}
		sd := make(map[string]discovery.Configs, len(sc))
		for _, s := range sc {
			sd[s.JobName] = s.ServiceDiscoveryConfigs
		}
		if e := f.scrapeD.ApplyConfig(sd); e != nil {
			err = errors.Join(err, fmt.Errorf("service discovery: %w", e))
		}
	}
	if e := f.rules.apply(c); e != nil {
		err = errors.Join(err, e)
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.cfg = c
	f.mu.Unlock()
	return nil
}

// Reload reads the configuration file again and applies it. A file that
// does not load leaves the configuration in effect unchanged.
func (f *Federation) Reload() error {
	err := f.reload(true)
	f.metrics.reload(err)
	return err
}

func (f *Federation) reload(force bool) error {
	c, hash, err := f.load()
	if err != nil {
		return err
	}
	f.mu.RLock()
	same := hash == f.cfgHash
	f.mu.RUnlock()
	if same && !force {
		return nil
	}
	if err := f.apply(c); err != nil {
		return err
	}
	f.mu.Lock()
	f.cfgHash = hash
	f.mu.Unlock()
	f.logger.Info("configuration reloaded", "file", f.o.ConfigFile)
	return nil
}

// watch reloads the configuration when the file or one of its rule files
// changed, every ReloadInterval.
func (f *Federation) watch(ctx context.Context) {
	t := time.NewTicker(f.o.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.mu.RLock()
			old := f.cfgHash
			f.mu.RUnlock()
			err := f.reload(false)
			f.mu.RLock()
			changed := old != f.cfgHash
			f.mu.RUnlock()
			if err != nil || changed {
				f.metrics.reload(err)
			}
			if err != nil {
				f.logger.Error("cannot reload the configuration; the previous one stays in effect", "file", f.o.ConfigFile, "err", err)
			}
		}
	}
}

// Limits applied to a scrape job that sets none, as if written in its
// configuration: Prometheus' sample_limit (a target exposing more samples
// fails its scrape, reported in its up and scrape_samples_post_metric_relabeling)
// and label limits (a series past them fails the scrape too). Jobs
// scraping a /federate endpoint get no default sample_limit: a leaf
// Prometheus legitimately sends millions, bounded by the series budget
// instead.
const (
	DefaultScrapeSampleLimit      = 200_000
	DefaultScrapeLabelLimit       = 64
	DefaultScrapeLabelNameLength  = 256
	DefaultScrapeLabelValueLength = 4096
	// DefaultScrapeBodySizeLimit bounds the uncompressed body of one
	// scrape (body_size_limit): ample for a /federate of a million series.
	DefaultScrapeBodySizeLimit = 512 << 20
)

// inlineScrapeConfigFiles reads the jobs of scrape_config_files into
// scrape_configs, so that the scrape defaults and the redirect policy
// apply to them too.
func inlineScrapeConfigFiles(c *config.Config) error {
	if len(c.ScrapeConfigFiles) == 0 {
		return nil
	}
	scs, err := c.GetScrapeConfigs()
	if err != nil {
		return err
	}
	c.ScrapeConfigs, c.ScrapeConfigFiles = scs, nil
	return nil
}

// applyScrapeDefaults fills the scrape limits c leaves unset. The label
// limits go in global, which the jobs of scrape_config_files inherit too.
func applyScrapeDefaults(c *config.Config) {
	g := &c.GlobalConfig
	if g.LabelLimit == 0 {
		g.LabelLimit = DefaultScrapeLabelLimit
	}
	if g.LabelNameLengthLimit == 0 {
		g.LabelNameLengthLimit = DefaultScrapeLabelNameLength
	}
	if g.LabelValueLengthLimit == 0 {
		g.LabelValueLengthLimit = DefaultScrapeLabelValueLength
	}
	for _, sc := range c.ScrapeConfigs {
		// A scrape fetches its configured target only: a redirect is
		// not followed (the scrape fails with the 3xx status), so a
		// target cannot point the federation at another host, such as
		// a cloud metadata endpoint or an internal service. Prometheus'
		// follow_redirects: true is overridden; likewise for http_sd.
		sc.HTTPClientConfig.FollowRedirects = false
		for _, sd := range sc.ServiceDiscoveryConfigs {
			if h, ok := sd.(*promhttpsd.SDConfig); ok {
				h.HTTPClientConfig.FollowRedirects = false
			}
		}
		if sc.BodySizeLimit == 0 {
			sc.BodySizeLimit = DefaultScrapeBodySizeLimit
		}
		if sc.SampleLimit == 0 && sc.MetricsPath != "/federate" {
			sc.SampleLimit = DefaultScrapeSampleLimit
		}
		if sc.LabelLimit == 0 {
			sc.LabelLimit = g.LabelLimit
		}
		if sc.LabelNameLengthLimit == 0 {
			sc.LabelNameLengthLimit = g.LabelNameLengthLimit
		}
		if sc.LabelValueLengthLimit == 0 {
			sc.LabelValueLengthLimit = g.LabelValueLengthLimit
		}
	}
}
