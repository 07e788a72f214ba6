// Package golden generates Prometheus recording rules for the four golden
// signals (traffic, errors, latency, saturation) per service, grade and
// datacenter, and multiwindow SLO burn-rate alerting rules per grade, as
// rule files in Prometheus' own format (model/rulefmt).
//
// Which metrics carry the signals is configuration: a Convention names the
// request counter or histogram, the matchers of a failed request, the
// latency histogram and the in-flight gauge of one naming scheme. Presets
// cover Vigil's SDK, the OpenTelemetry HTTP semantic conventions as
// exported to Prometheus and the common exporter style (see presets.go).
package golden

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Config is the whole generator's configuration; the YAML file given to
// `vigil rules --conventions` has this shape (docs/metrics-golden.md).
type Config struct {
	// Labels are the label names of the recorded series: service, grade
	// and datacenter. Default service, grade, dc.
	Labels Labels `yaml:"labels"`
	// RateWindow is the range of the golden signals' rates. Default 5m.
	RateWindow model.Duration `yaml:"rate_window"`
	// Interval is the evaluation interval of the golden-signal groups;
	// zero leaves Prometheus' global evaluation_interval.
	Interval model.Duration `yaml:"interval"`
	// Federated leaves out the rules that read the services' own series
	// (the service_grade_dc level): for a global level that federates
	// the service_grade_dc and service_grade_dc_le series of the
	// datacenter levels and aggregates them further.
	Federated bool `yaml:"federated"`
	// Quantiles of the latency histograms. Default 0.5, 0.9, 0.99.
	Quantiles []float64 `yaml:"quantiles"`
	// DefaultGrade is the grade of series that have no grade label (the
	// SDK always sets one; other conventions rarely do). Default "4".
	DefaultGrade string `yaml:"default_grade"`
	// Conventions are the request metrics' naming schemes. Default: the
	// SDK's presets vigil-http, vigil-http-client, vigil-grpc,
	// vigil-grpc-client.
	Conventions []Convention `yaml:"conventions"`
	// Process names the CPU and memory metrics; nil (the key absent)
	// means the preset "vigil"; `process: {disabled: true}` generates
	// none.
	Process *Process `yaml:"process"`
	// SLO configures the burn-rate alerts.
	SLO SLO `yaml:"slo"`
}

// Labels are the names of the service, grade and datacenter labels.
type Labels struct {
	Service string `yaml:"service"`
	Grade   string `yaml:"grade"`
	DC      string `yaml:"dc"`
}

// Convention is one naming scheme of request metrics.
type Convention struct {
	// Preset fills every field left empty from a built-in convention.
	Preset string `yaml:"preset"`
	// Name names the rule file and groups. Default the preset's name.
	Name string `yaml:"name"`
	// Signal is the metric part of the recorded names, e.g. vigil_http
	// gives service_grade_dc:vigil_http_requests:rate5m.
	Signal string `yaml:"signal"`
	// Labels are the source series' label names that become the output
	// labels (Config.Labels), e.g. {service: job}. Empty fields are the
	// output names themselves.
	Labels Labels `yaml:"labels"`
	// Selector holds extra matchers every source selector gets, e.g.
	// `env="prod"`.
	Selector string `yaml:"selector"`
	// Requests is the traffic metric.
	Requests Requests `yaml:"requests"`
	// Errors holds the matchers that select failed requests among
	// Requests, e.g. `code=~"5.."`.
	Errors string `yaml:"errors"`
	// Duration is the latency histogram (classic _bucket series, native
	// histograms, or both); empty records no latency.
	Duration string `yaml:"duration"`
	// DurationUnit is the unit Duration observes: seconds (default) or
	// milliseconds (OpenTelemetry's spanmetrics, Jaeger's convention);
	// recorded quantiles are always in seconds.
	DurationUnit string `yaml:"duration_unit"`
	// Inflight is the gauge of requests in progress; empty records none.
	Inflight string `yaml:"inflight"`
	// Capacity is a gauge of how many requests can be in progress at
	// once; with it the in-flight ratio is recorded.
	Capacity string `yaml:"capacity"`
	// NoSLO leaves this convention out of the burn-rate alerts (e.g. the
	// client side, whose errors are the callees').
	NoSLO bool `yaml:"no_slo"`
}

// Requests names the traffic metric: a counter, or a histogram whose
// observation count is the number of requests (OpenTelemetry's
// http.server.request.duration). Exactly one is set.
type Requests struct {
	Counter   string `yaml:"counter"`
	Histogram string `yaml:"histogram"`
}

// Process names the saturation metrics of a process.
type Process struct {
	// Preset fills every field left empty: "vigil" (the Go client's
	// process and runtime collectors, joined to the SDK's labels) or
	// "target" (the service is the job label).
	Preset   string `yaml:"preset"`
	Disabled bool   `yaml:"disabled"`
	// Labels: as in Convention.
	Labels Labels `yaml:"labels"`
	// Selector: as in Convention.
	Selector string `yaml:"selector"`
	// CPU is the CPU-seconds counter, e.g. process_cpu_seconds_total.
	CPU string `yaml:"cpu"`
	// Cores is a gauge of the CPU cores the process may use, e.g.
	// go_sched_gomaxprocs_threads; with it CPU utilisation is recorded.
	Cores string `yaml:"cores"`
	// Memory is the resident-memory gauge, e.g.
	// process_resident_memory_bytes.
	Memory string `yaml:"memory"`
	// Heap is a heap-in-use gauge, e.g. go_memstats_heap_inuse_bytes.
	Heap string `yaml:"heap"`
	// MemoryLimit is a gauge of the memory the process may use (e.g. a
	// container limit); with it memory utilisation is recorded.
	MemoryLimit string `yaml:"memory_limit"`
	// Join takes the service and grade labels from another metric of the
	// same target, for process metrics that do not carry them.
	Join *Join `yaml:"join"`
}

// Join describes a many-to-one join on target labels.
type Join struct {
	// Metric carries the service and grade labels, e.g.
	// vigil_http_inflight_requests.
	Metric string `yaml:"metric"`
	// On are the labels that identify the target. Default job, instance.
	On []string `yaml:"on"`
}

// SLO configures the burn-rate alerts.
type SLO struct {
	// Disabled generates no burn-rate rules.
	Disabled bool `yaml:"disabled"`
	// Objectives are the availability objectives in percent per grade:
	// the share of requests that must succeed. Default 1: 99.9, 2: 99.5,
	// 3: 99, 4: 95. A grade not listed gets no alerts.
	Objectives map[string]float64 `yaml:"objectives"`
	// Alerts are the multiwindow burn-rate conditions. Default the Google
	// SRE workbook's: page on 14.4× over 1h and 5m or 6× over 6h and 30m;
	// ticket on 3× over 1d and 2h or 1× over 3d and 6h.
	Alerts []BurnAlert `yaml:"alerts"`
	// Interval is the evaluation interval of the SLO groups; zero leaves
	// the global one.
	Interval model.Duration `yaml:"interval"`
	// For is how long a burn must last before the alert fires.
	For model.Duration `yaml:"for"`
}

// BurnAlert is one multiwindow condition: the error ratio over both
// windows is above Factor times the error budget (1 − objective).
type BurnAlert struct {
	Severity    string         `yaml:"severity"`
	LongWindow  model.Duration `yaml:"long_window"`
	ShortWindow model.Duration `yaml:"short_window"`
	Factor      float64        `yaml:"factor"`
}

// Defaults.
var (
	DefaultLabels     = Labels{Service: "service", Grade: "grade", DC: "dc"}
	DefaultQuantiles  = []float64{0.5, 0.9, 0.99}
	DefaultObjectives = map[string]float64{"1": 99.9, "2": 99.5, "3": 99, "4": 95}
	DefaultBurnAlerts = []BurnAlert{
		{"page", model.Duration(time.Hour), model.Duration(5 * time.Minute), 14.4},
		{"page", model.Duration(6 * time.Hour), model.Duration(30 * time.Minute), 6},
		{"ticket", model.Duration(24 * time.Hour), model.Duration(2 * time.Hour), 3},
		{"ticket", model.Duration(72 * time.Hour), model.Duration(6 * time.Hour), 1},
	}
	DefaultConventions = []string{"vigil-http", "vigil-http-client", "vigil-grpc", "vigil-grpc-client", "vigil-spans"}
)

const defaultRateWindow = model.Duration(5 * time.Minute)

// DefaultConfig returns the configuration used without a conventions
// file: the SDK's metrics, with defaults filled.
func DefaultConfig() *Config {
	c, err := ParseConfig(nil)
	if err != nil {
		panic(fmt.Sprintf("golden: the default configuration is invalid: %v", err))
	}
	return c
}

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's own file, named by a flag or in the config
	if err != nil {
		return nil, fmt.Errorf("cannot read conventions file: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a YAML configuration, fills the defaults and presets
// and checks every field; an error names the field at fault. Empty input
// is the default configuration.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cannot parse conventions: %w", err)
	}
	if err := c.complete(); err != nil {
		return nil, err
	}
	return &c, nil
}

// complete fills defaults and presets, then validates.
func (c *Config) complete() error {
	c.Labels = c.Labels.or(DefaultLabels)
	if err := c.Labels.validate("labels"); err != nil {
		return err
	}
	if c.RateWindow == 0 {
		c.RateWindow = defaultRateWindow
	}
	if c.RateWindow < 0 {
		return fmt.Errorf("rate_window: %s is negative", c.RateWindow)
	}
	if c.Quantiles == nil {
		c.Quantiles = DefaultQuantiles
	}
	for i, q := range c.Quantiles {
		if !(q > 0 && q < 1) {
			return fmt.Errorf("quantiles[%d]: %v is not between 0 and 1 (exclusive)", i, q)
		}
	}
	if c.DefaultGrade == "" {
		c.DefaultGrade = "4"
	}
	if c.Conventions == nil {
		for _, p := range DefaultConventions {
			c.Conventions = append(c.Conventions, Convention{Preset: p})
		}
	}
	names := map[string]int{}
	for i := range c.Conventions {
		field := fmt.Sprintf("conventions[%d]", i)
		if err := c.Conventions[i].complete(field); err != nil {
			return err
		}
		n := c.Conventions[i].Name
		if j, dup := names[n]; dup {
			return fmt.Errorf("%s.name: %q is also the name of conventions[%d]; names must differ", field, n, j)
		}
		names[n] = i
	}
	if c.Process == nil {
		c.Process = &Process{Preset: "vigil"}
	}
	if err := c.Process.complete("process"); err != nil {
		return err
	}
	return c.SLO.complete("slo")
}

func (l Labels) or(d Labels) Labels {
	if l.Service == "" {
		l.Service = d.Service
	}
	if l.Grade == "" {
		l.Grade = d.Grade
	}
	if l.DC == "" {
		l.DC = d.DC
	}
	return l
}

func (l Labels) validate(field string) error {
	for _, f := range []struct{ key, v string }{{"service", l.Service}, {"grade", l.Grade}, {"dc", l.DC}} {
		if !model.LegacyValidation.IsValidLabelName(f.v) {
			return fmt.Errorf("%s.%s: %q is not a valid label name", field, f.key, f.v)
		}
	}
	if l.Service == l.Grade || l.Service == l.DC || l.Grade == l.DC {
		return fmt.Errorf("%s: service, grade and dc must be three different labels, got %q, %q, %q", field, l.Service, l.Grade, l.DC)
	}
	return nil
}

func (c *Convention) complete(field string) error {
	if c.Preset != "" {
		p, ok := conventionPresets[c.Preset]
		if !ok {
			return fmt.Errorf("%s.preset: unknown preset %q; known: %s", field, c.Preset, strings.Join(presetNames(conventionPresets), ", "))
		}
		c.fillFrom(p)
	}
	if c.Name == "" {
		return fmt.Errorf("%s.name: missing (or give a preset)", field)
	}
	if !validName(c.Name) {
		return fmt.Errorf("%s.name: %q may hold only letters, digits and _", field, c.Name)
	}
	if c.Name == processName {
		return fmt.Errorf("%s.name: %q is reserved for the process rules", field, c.Name)
	}
	if c.Signal == "" {
		c.Signal = c.Name
	}
	if !model.LegacyValidation.IsValidMetricName(c.Signal) {
		return fmt.Errorf("%s.signal: %q is not a valid metric name", field, c.Signal)
	}
	if err := checkLabels(field+".labels", c.Labels); err != nil {
		return err
	}
	if err := checkMatchers(field+".selector", c.Selector); err != nil {
		return err
	}
	switch c.DurationUnit {
	case "":
		c.DurationUnit = "seconds"
	case "seconds", "milliseconds":
	default:
		return fmt.Errorf("%s.duration_unit: %q: want seconds or milliseconds", field, c.DurationUnit)
	}
	switch r := c.Requests; {
	case r.Counter == "" && r.Histogram == "":
		return fmt.Errorf("%s.requests: set counter or histogram", field)
	case r.Counter != "" && r.Histogram != "":
		return fmt.Errorf("%s.requests: set counter or histogram, not both", field)
	}
	for _, m := range []struct{ key, v string }{
		{"requests.counter", c.Requests.Counter}, {"requests.histogram", c.Requests.Histogram},
		{"duration", c.Duration}, {"inflight", c.Inflight}, {"capacity", c.Capacity},
	} {
		if err := checkMetric(field+"."+m.key, m.v); err != nil {
			return err
		}
	}
	if c.Errors == "" {
		return fmt.Errorf("%s.errors: missing; give the matchers of a failed request, e.g. code=~\"5..\"", field)
	}
	if err := checkMatchers(field+".errors", c.Errors); err != nil {
		return err
	}
	if c.Capacity != "" && c.Inflight == "" {
		return fmt.Errorf("%s.capacity: needs inflight too", field)
	}
	return nil
}

// fillFrom sets every empty field of c from p.
func (c *Convention) fillFrom(p Convention) {
	fill(&c.Name, p.Name)
	fill(&c.Signal, p.Signal)
	fill(&c.Labels.Service, p.Labels.Service)
	fill(&c.Labels.Grade, p.Labels.Grade)
	fill(&c.Labels.DC, p.Labels.DC)
	fill(&c.Selector, p.Selector)
	if c.Requests == (Requests{}) {
		c.Requests = p.Requests
	}
	fill(&c.Errors, p.Errors)
	fill(&c.Duration, p.Duration)
	fill(&c.DurationUnit, p.DurationUnit)
	fill(&c.Inflight, p.Inflight)
	fill(&c.Capacity, p.Capacity)
	c.NoSLO = c.NoSLO || p.NoSLO
}
