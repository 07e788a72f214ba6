package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/internal/model"
)

// Config is the file of --profiler.config: Prometheus' (and Parca's)
// scrape_configs syntax, with the profile types to scrape per job.
type Config struct {
	Global        GlobalConfig    `yaml:"global"`
	ScrapeConfigs []*ScrapeConfig `yaml:"scrape_configs"`
}

// GlobalConfig holds the defaults of every scrape config.
type GlobalConfig struct {
	ScrapeInterval time.Duration `yaml:"scrape_interval"`
	ScrapeTimeout  time.Duration `yaml:"scrape_timeout"`
}

// ScrapeConfig is one job: how and what to scrape from its targets.
type ScrapeConfig struct {
	JobName        string        `yaml:"job_name"`
	ScrapeInterval time.Duration `yaml:"scrape_interval"`
	ScrapeTimeout  time.Duration `yaml:"scrape_timeout"`
	Scheme         string        `yaml:"scheme"`
	// PathPrefix is put before /debug/pprof/… (Parca's path_prefix).
	PathPrefix string `yaml:"path_prefix"`
	// Profiles are the types scraped; empty scrapes cpu, heap, allocs,
	// goroutine, mutex and block.
	Profiles []string `yaml:"profiles"`
	// CPUSeconds is the window of a CPU profile, ?seconds=N; it must be
	// shorter than the scrape interval and the timeout.
	CPUSeconds int `yaml:"cpu_seconds"`
	// BodySizeLimit bounds a scraped profile: bytes, or with a unit
	// (KB, MB, KiB, MiB…); 0 takes --profiler.max-body-bytes.
	BodySizeLimit ByteSize `yaml:"body_size_limit"`

	// ProfilingConfig is Parca's way to choose the types and their
	// paths; it replaces Profiles.
	ProfilingConfig *ProfilingConfig `yaml:"profiling_config"`

	StaticConfigs []StaticConfig `yaml:"static_configs"`
	FileSDConfigs []FileSDConfig `yaml:"file_sd_configs"`
	HTTPSDConfigs []HTTPSDConfig `yaml:"http_sd_configs"`

	// paths is each scraped type's path under PathPrefix; windowed says
	// which types take ?seconds=CPUSeconds.
	paths    map[string]string
	windowed map[string]bool
}

// ProfilingConfig is Parca's profiling_config: the pprof endpoints of a
// job by Parca's names (memory, process_cpu, block, goroutine, mutex, or
// one's own with its path).
type ProfilingConfig struct {
	PprofConfig map[string]*PprofConfig `yaml:"pprof_config"`
	PathPrefix  string                  `yaml:"path_prefix"`
}

// PprofConfig is one endpoint of a ProfilingConfig.
type PprofConfig struct {
	Enabled *bool  `yaml:"enabled"`
	Path    string `yaml:"path"`
	// Delta makes the scrape a window: ?seconds=cpu_seconds (Parca's
	// process_cpu and fgprof).
	Delta bool `yaml:"delta"`
	// KeepSampleType is Parca's; accepted and ignored (every sample type
	// is kept).
	KeepSampleType []map[string]string `yaml:"keep_sample_type"`
}

// parcaTypes maps Parca's endpoint names to Vigil's types; the endpoints
// Parca scrapes by default are the ones with true.
var parcaTypes = map[string]struct {
	typ string
	def bool
}{
	"memory": {model.ProfileHeap, true}, "process_cpu": {model.ProfileCPU, true}, "block": {model.ProfileBlock, true},
	"goroutine": {model.ProfileGoroutine, true}, "mutex": {model.ProfileMutex, true}, "allocs": {model.ProfileAllocs, false},
}

// StaticConfig is a target group: Prometheus' static_configs entry, also
// the format of file_sd_configs files and http_sd_configs answers.
type StaticConfig struct {
	Targets []string          `yaml:"targets" json:"targets"`
	Labels  map[string]string `yaml:"labels" json:"labels"`
}

// FileSDConfig reads target groups from JSON or YAML files.
type FileSDConfig struct {
	Files           []string      `yaml:"files"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

// HTTPSDConfig reads target groups from a URL answering JSON.
type HTTPSDConfig struct {
	URL             string        `yaml:"url"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

// ByteSize is a size in bytes, written as a number or with a unit.
type ByteSize int64

// UnmarshalYAML parses 1048576, 1MB, 1MiB, 512KB, 1GB.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: body_size_limit %q: %v", n.Line, n.Value, err)
	}
	*b = ByteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, errors.New("want a size in bytes, optionally with a unit: KB, MB, GB, KiB, MiB, GiB")
	}
	return n * mult, nil
}

// Defaults of a scrape config.
const (
	DefaultScrapeInterval = 15 * time.Second
	DefaultCPUSeconds     = 10
	defaultRefresh        = time.Minute
)

// ScrapedTypes are the profile types a job scrapes by default, and their
// paths under /debug/pprof/.
var ScrapedTypes = []string{model.ProfileCPU, model.ProfileHeap, model.ProfileAllocs, model.ProfileGoroutine, model.ProfileMutex, model.ProfileBlock}

var scrapePaths = map[string]string{
	model.ProfileCPU: "profile", model.ProfileHeap: "heap", model.ProfileAllocs: "allocs",
	model.ProfileGoroutine: "goroutine", model.ProfileMutex: "mutex", model.ProfileBlock: "block",
}

// LoadConfig reads and checks a --profiler.config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's own file, named by a flag or in the config
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and checks a configuration, filling in defaults.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if c.Global.ScrapeInterval <= 0 {
		c.Global.ScrapeInterval = DefaultScrapeInterval
	}
	jobs := map[string]bool{}
	for i, sc := range c.ScrapeConfigs {
		if sc == nil {
			return nil, fmt.Errorf("scrape_configs[%d]: empty", i)
		}
		if sc.JobName == "" {
			return nil, fmt.Errorf("scrape_configs[%d]: job_name missing", i)
		}
		if jobs[sc.JobName] {
			return nil, fmt.Errorf("scrape_configs[%d]: job_name %q appears twice", i, sc.JobName)
		}
		jobs[sc.JobName] = true
		if err := sc.check(c.Global); err != nil {
			return nil, fmt.Errorf("job %q: %w", sc.JobName, err)
		}
	}
	return &c, nil
}

func (sc *ScrapeConfig) check(g GlobalConfig) error {
	if sc.ScrapeInterval <= 0 {
		sc.ScrapeInterval = g.ScrapeInterval
	}
	if sc.ScrapeTimeout <= 0 {
		sc.ScrapeTimeout = g.ScrapeTimeout
	}
	if sc.CPUSeconds == 0 {
		sc.CPUSeconds = DefaultCPUSeconds
		if limit := int(sc.ScrapeInterval/time.Second) - 1; sc.CPUSeconds > limit {
			sc.CPUSeconds = max(1, limit)
		}
	}
	if sc.CPUSeconds < 0 {
		return fmt.Errorf("cpu_seconds %d is negative", sc.CPUSeconds)
	}
	if sc.ScrapeTimeout <= 0 {
		// A CPU scrape takes its window; the others are quick.
		sc.ScrapeTimeout = time.Duration(sc.CPUSeconds)*time.Second + 10*time.Second
	}
	switch sc.Scheme {
	case "":
		sc.Scheme = "http"
	case "http", "https":
	default:
		return fmt.Errorf("scheme %q: want http or https", sc.Scheme)
	}
	if err := sc.endpoints(); err != nil {
		return err
	}
	for _, t := range sc.Profiles {
		if !sc.windowed[t] {
			continue
		}
		if time.Duration(sc.CPUSeconds)*time.Second >= sc.ScrapeTimeout {
			return fmt.Errorf("cpu_seconds %d: the CPU window must be shorter than scrape_timeout %s", sc.CPUSeconds, sc.ScrapeTimeout)
		}
		if time.Duration(sc.CPUSeconds)*time.Second >= sc.ScrapeInterval {
			return fmt.Errorf("cpu_seconds %d: the CPU window must be shorter than scrape_interval %s", sc.CPUSeconds, sc.ScrapeInterval)
		}
	}
	for i, s := range sc.StaticConfigs {
		for _, t := range s.Targets {
			if err := checkTarget(t); err != nil {
				return fmt.Errorf("static_configs[%d]: %w", i, err)
			}
		}
	}
	for i, f := range sc.FileSDConfigs {
		if len(f.Files) == 0 {
			return fmt.Errorf("file_sd_configs[%d]: no files", i)
		}
		if f.RefreshInterval <= 0 {
			sc.FileSDConfigs[i].RefreshInterval = defaultRefresh
		}
	}
	for i, h := range sc.HTTPSDConfigs {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http_sd_configs[%d]: url %q: want an http or https URL", i, h.URL)
		}
		if h.RefreshInterval <= 0 {
			sc.HTTPSDConfigs[i].RefreshInterval = defaultRefresh
		}
	}
	return nil
}

// endpoints fills in the types a job scrapes and their paths, from
// profiles or from Parca's profiling_config.
func (sc *ScrapeConfig) endpoints() error {
	sc.paths, sc.windowed = map[string]string{}, map[string]bool{}
	pc := sc.ProfilingConfig
	if pc == nil {
		if len(sc.Profiles) == 0 {
			sc.Profiles = ScrapedTypes
		}
		for _, t := range sc.Profiles {
			if scrapePaths[t] == "" {
				return fmt.Errorf("profiles: %q is not a profile type that can be scraped (want %s)", t, strings.Join(ScrapedTypes, ", "))
			}
			sc.paths[t] = "/debug/pprof/" + scrapePaths[t]
			sc.windowed[t] = t == model.ProfileCPU
		}
		return nil
	}
	if len(sc.Profiles) > 0 {
		return errors.New("profiles and profiling_config: give one of them")
	}
	if pc.PathPrefix != "" {
		if sc.PathPrefix != "" && sc.PathPrefix != pc.PathPrefix {
			return fmt.Errorf("path_prefix %q and profiling_config.path_prefix %q differ", sc.PathPrefix, pc.PathPrefix)
		}
		sc.PathPrefix = pc.PathPrefix
	}
	enabled := map[string]bool{}
	for name, pt := range parcaTypes {
		enabled[name] = pt.def
	}
	for name, c := range pc.PprofConfig {
		enabled[name] = c == nil || c.Enabled == nil || *c.Enabled
	}
	names := make([]string, 0, len(enabled))
	for name, on := range enabled {
		if on {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		c := pc.PprofConfig[name]
		if c == nil {
			c = &PprofConfig{}
		}
		typ, path := name, c.Path
		if pt, ok := parcaTypes[name]; ok {
			typ = pt.typ
			if path == "" {
				path = "/debug/pprof/" + scrapePaths[typ]
			}
		}
		switch {
		case !model.ValidProfileType(typ):
			return fmt.Errorf("profiling_config.pprof_config.%s: not a profile type name (want [a-zA-Z0-9_], not starting with a digit)", name)
		case path == "" || path[0] != '/':
			return fmt.Errorf("profiling_config.pprof_config.%s: path %q: want an absolute path, e.g. /debug/pprof/%s", name, path, name)
		case sc.paths[typ] != "":
			return fmt.Errorf("profiling_config.pprof_config.%s: profile type %s is scraped twice", name, typ)
		}
		sc.Profiles = append(sc.Profiles, typ)
		sc.paths[typ] = path
		sc.windowed[typ] = typ == model.ProfileCPU || c.Delta
	}
	return nil
}

// checkTarget checks a target address: host:port, nothing else.
func checkTarget(t string) error {
	u, err := url.Parse("http://" + t)
	if err != nil || u.Host != t || u.Port() == "" {
		return fmt.Errorf("target %q: want host:port", t)
	}
	return nil
}
