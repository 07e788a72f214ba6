package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// federationConfig is what the profiler reads of the federation's
// configuration (Prometheus' own syntax): its scrape jobs and their
// targets. Everything else in the file is the federation's and is ignored.
type federationConfig struct {
	Global struct {
		ScrapeInterval time.Duration `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName        string         `yaml:"job_name"`
		ScrapeInterval time.Duration  `yaml:"scrape_interval"`
		Scheme         string         `yaml:"scheme"`
		MetricsPath    string         `yaml:"metrics_path"`
		StaticConfigs  []StaticConfig `yaml:"static_configs"`
		FileSDConfigs  []FileSDConfig `yaml:"file_sd_configs"`
		HTTPSDConfigs  []HTTPSDConfig `yaml:"http_sd_configs"`
	} `yaml:"scrape_configs"`
}

// FederationJobs returns a scrape job for each metrics job of the
// federation's configuration at path, so that the services the federation
// scrapes for metrics (the SDK serves /debug/pprof/ next to /metrics) are
// profiled with no configuration of their own: same job name, targets,
// discovery, labels and scheme, every type scraped (ScrapedTypes), at the
// job's interval but never more often than every floor (the profiler's
// own global scrape_interval; 0 takes DefaultScrapeInterval). Jobs
// that federate another Prometheus (metrics_path /federate) are not
// services and are left out.
func FederationJobs(path string, floor time.Duration) ([]*ScrapeConfig, error) {
	if floor <= 0 {
		floor = DefaultScrapeInterval
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's own file, named by a flag or in the config
	if err != nil {
		return nil, err
	}
	var fc federationConfig
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g := GlobalConfig{ScrapeInterval: max(fc.Global.ScrapeInterval, floor)}
	var jobs []*ScrapeConfig
	for i, j := range fc.ScrapeConfigs {
		if j.MetricsPath == "/federate" {
			continue
		}
		if j.JobName == "" {
			return nil, fmt.Errorf("%s: scrape_configs[%d]: job_name missing", path, i)
		}
		sc := &ScrapeConfig{
			JobName: j.JobName, Scheme: j.Scheme,
			StaticConfigs: j.StaticConfigs, FileSDConfigs: j.FileSDConfigs, HTTPSDConfigs: j.HTTPSDConfigs,
		}
		if j.ScrapeInterval > 0 {
			sc.ScrapeInterval = max(j.ScrapeInterval, floor)
		}
		if err := sc.check(g); err != nil {
			return nil, fmt.Errorf("%s: job %q: %w", path, j.JobName, err)
		}
		jobs = append(jobs, sc)
	}
	return jobs, nil
}

// WithJobs adds jobs to c (nil is an empty configuration), leaving out
// those whose name c already has: a job configured for the profiler wins.
func (c *Config) WithJobs(jobs []*ScrapeConfig) *Config {
	if c == nil {
		c = &Config{Global: GlobalConfig{ScrapeInterval: DefaultScrapeInterval}}
	}
	have := map[string]bool{}
	for _, sc := range c.ScrapeConfigs {
		have[sc.JobName] = true
	}
	for _, sc := range jobs {
		if !have[sc.JobName] {
			c.ScrapeConfigs = append(c.ScrapeConfigs, sc)
		}
	}
	return c
}
