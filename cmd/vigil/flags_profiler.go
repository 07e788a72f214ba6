package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/profiler"
)

// profilerFlags are the settings of the profiler (vigil profiler and
// all-in-one).
type profilerFlags struct {
	listen, config, federationConfig *string
	maxBody                          *int64
	concurrency                      *int
}

func addProfilerFlags(fs *flag.FlagSet) *profilerFlags {
	d := profiler.DefaultOptions()
	return &profilerFlags{
		listen:           fs.String("profiler.listen", config.DefaultProfilerAddr, "address of the profiler's HTTP API: Pyroscope's POST /ingest and push.v1.PusherService/Push, /metrics; empty disables it"),
		config:           fs.String("profiler.config", "", "YAML file of scrape_configs (Prometheus syntax) whose targets' pprof endpoints are scraped; empty scrapes nothing"),
		federationConfig: fs.String("profiler.federation-config", "", "the federation's configuration (Prometheus syntax): the targets of each of its scrape jobs, but /federate ones, are profiled too, every type, under the same job name, at most as often as --profiler.config's global scrape_interval (default 15s); a job of --profiler.config with the same name replaces it"),
		maxBody:          fs.Int64("profiler.max-body-bytes", d.MaxBodyBytes, "largest pushed request body, and largest scraped profile unless a scrape config sets body_size_limit"),
		concurrency:      fs.Int("profiler.concurrency", d.Concurrency, "scrapes in flight at most, over every target"),
	}
}

// options returns the profiler's options, with its scrape configuration
// read and checked.
func (f *profilerFlags) options() (profiler.Options, error) {
	o := profiler.DefaultOptions()
	o.MaxBodyBytes, o.Concurrency = *f.maxBody, *f.concurrency
	if *f.config != "" {
		c, err := profiler.LoadConfig(*f.config)
		if err != nil {
			return o, fmt.Errorf("--profiler.config: %w", err)
		}
		o.Config = c
	}
	if *f.federationConfig != "" {
		var floor time.Duration
		if o.Config != nil {
			floor = o.Config.Global.ScrapeInterval
		}
		jobs, err := profiler.FederationJobs(*f.federationConfig, floor)
		if err != nil {
			return o, fmt.Errorf("--profiler.federation-config: %w", err)
		}
		o.Config = o.Config.WithJobs(jobs)
	}
	return o, nil
}
