package profiler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zeebo/xxh3"
	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/queue"
)

// maxSDBytes bounds a file_sd file or an http_sd answer.
const maxSDBytes = 4 << 20

// target is one address of a job with the labels its profiles get.
type target struct {
	sc     *ScrapeConfig
	addr   string
	labels map[string]string
	// serviceFromJob says the service label is the job's name, there by
	// default: a service's own Vigil-Service header replaces it.
	serviceFromJob bool
}

// sdkHeaders are the response headers of the Go SDK's pprof handlers
// (sdk.HeaderService…) and the labels they give the profile.
var sdkHeaders = [...]struct{ header, label string }{
	{"Vigil-Service", model.LabelService}, {"Vigil-Grade", model.LabelGrade}, {"Vigil-Env", model.LabelEnv},
	{"Vigil-Version", "version"}, {"Vigil-Host", model.LabelHost},
}

// labelsFor returns the labels of a profile scraped from t with the
// response headers h: the target's, completed by what the service says of
// itself in the SDK's headers. A label the configuration or discovery
// gave wins over the header.
func (t *target) labelsFor(h http.Header) map[string]string {
	var out map[string]string
	for _, sh := range sdkHeaders {
		v := h.Get(sh.header)
		if v == "" || len(v) > model.MaxProfileLabelLen || !utf8.ValidString(v) {
			continue
		}
		if cur, ok := t.labels[sh.label]; ok && (sh.label != model.LabelService || !t.serviceFromJob) || cur == v {
			continue
		}
		if out == nil {
			out = maps.Clone(t.labels)
		}
		out[sh.label] = v
	}
	if out == nil {
		return t.labels
	}
	return out
}

func (t *target) key() string {
	names := make([]string, 0, len(t.labels))
	for k := range t.labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(t.addr)
	for _, k := range names {
		b.WriteString("\x00" + k + "=" + t.labels[k])
	}
	return b.String()
}

// runScrapes runs one discovery loop per job until ctx ends.
func (p *Profiler) runScrapes(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, sc := range p.opts.Config.ScrapeConfigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runJob(ctx, sc)
		}()
	}
	wg.Wait()
	return nil
}

// runJob keeps the scrape loops of a job's targets in step with its
// discovery: static targets once, files and HTTP endpoints on their refresh
// intervals (a failed refresh keeps the last good targets).
func (p *Profiler) runJob(ctx context.Context, sc *ScrapeConfig) {
	fileGroups := make([][]StaticConfig, len(sc.FileSDConfigs))
	httpGroups := make([][]StaticConfig, len(sc.HTTPSDConfigs))
	running := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range running {
			cancel()
		}
		wg.Wait()
	}()
	refresh := time.Duration(0)
	discover := func() {
		for i, f := range sc.FileSDConfigs {
			if g, err := readFileSD(f.Files); err != nil {
				p.m.sdErrors.WithLabelValues(sc.JobName, "file").Inc()
				p.log.Warn("file_sd_configs: cannot read the targets; keeping the last good ones", "job", sc.JobName, "err", err)
			} else {
				fileGroups[i] = g
			}
			refresh = minRefresh(refresh, f.RefreshInterval)
		}
		for i, h := range sc.HTTPSDConfigs {
			if g, err := p.readHTTPSD(ctx, h.URL); err != nil {
				p.m.sdErrors.WithLabelValues(sc.JobName, "http").Inc()
				p.log.Warn("http_sd_configs: cannot read the targets; keeping the last good ones", "job", sc.JobName, "url", h.URL, "err", err)
			} else {
				httpGroups[i] = g
			}
			refresh = minRefresh(refresh, h.RefreshInterval)
		}
		groups := append([]StaticConfig(nil), sc.StaticConfigs...)
		for _, g := range fileGroups {
			groups = append(groups, g...)
		}
		for _, g := range httpGroups {
			groups = append(groups, g...)
		}
		want := p.targets(sc, groups)
		for k, cancel := range running {
			if _, ok := want[k]; !ok {
				cancel()
				delete(running, k)
			}
		}
		for k, t := range want {
			if _, ok := running[k]; ok {
				continue
			}
			tctx, cancel := context.WithCancel(ctx)
			running[k] = cancel
			for _, typ := range sc.Profiles {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.scrapeLoop(tctx, t, typ)
				}()
			}
		}
		p.m.targets.WithLabelValues(sc.JobName).Set(float64(len(running)))
	}
	discover()
	if refresh == 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			discover()
		}
	}
}

func minRefresh(cur, d time.Duration) time.Duration {
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

// targets turns target groups into targets, keyed; an invalid address is
// logged and skipped.
func (p *Profiler) targets(sc *ScrapeConfig, groups []StaticConfig) map[string]*target {
	out := map[string]*target{}
	for _, g := range groups {
		for _, addr := range g.Targets {
			if err := checkTarget(addr); err != nil {
				p.log.Warn("skipping a discovered target", "job", sc.JobName, "err", err)
				continue
			}
			ls := map[string]string{}
			for k, v := range g.Labels {
				if !strings.HasPrefix(k, "__") && validLabelName(k) && v != "" && len(v) <= model.MaxProfileLabelLen {
					ls[k] = v
				}
			}
			ls[model.LabelJob] = sc.JobName
			ls[model.LabelInstance] = addr
			fromJob := ls[model.LabelService] == ""
			if fromJob {
				ls[model.LabelService] = sc.JobName
			}
			t := &target{sc: sc, addr: addr, labels: ls, serviceFromJob: fromJob}
			out[t.key()] = t
		}
	}
	return out
}

// readFileSD reads the target groups of files (globs), JSON when a name
// ends in .json, else YAML.
func readFileSD(patterns []string) ([]StaticConfig, error) {
	var out []StaticConfig
	for _, pat := range patterns {
		names, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("file pattern %q: %v", pat, err)
		}
		for _, name := range names {
			b, err := readLimited(name)
			if err != nil {
				return nil, err
			}
			var g []StaticConfig
			if strings.HasSuffix(name, ".json") {
				err = json.Unmarshal(b, &g)
			} else {
				err = yaml.Unmarshal(b, &g)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: not a list of target groups ({targets, labels}): %v", name, err)
			}
			out = append(out, g...)
		}
	}
	return out, nil
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name) // #nosec G304 -- file_sd files the operator listed in the config
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSDBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSDBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxSDBytes)
	}
	return b, nil
}

// readHTTPSD fetches the target groups of an http_sd_configs URL: a JSON
// list of {targets, labels}, as Prometheus' HTTP discovery reads.
func (p *Profiler) readHTTPSD(ctx context.Context, u string) ([]StaticConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSDBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSDBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", maxSDBytes)
	}
	var g []StaticConfig
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("not a JSON list of target groups: %v", err)
	}
	return g, nil
}

// scrapeLoop scrapes one profile type of one target every scrape interval,
// starting at an offset within the interval drawn from the target and type
// so that the targets of a job spread over it.
func (p *Profiler) scrapeLoop(ctx context.Context, t *target, typ string) {
	interval := t.sc.ScrapeInterval
	defer func() {
		p.m.up.DeleteLabelValues(t.sc.JobName, t.addr, typ)
	}()
	offset := time.Duration(xxh3.HashString(t.key()+"\x00"+typ) % uint64(interval)) // #nosec G115 -- interval is positive, and the remainder is below it
	timer := time.NewTimer(offset)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p.scrape(ctx, t, typ)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scrapeError is a failed scrape with the reason counted in /metrics.
type scrapeError struct {
	reason string
	err    error
}

func (e *scrapeError) Error() string { return e.err.Error() }

// scrape fetches one profile within the global concurrency bound and
// publishes it, recording the target's health.
func (p *Profiler) scrape(ctx context.Context, t *target, typ string) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-p.sem }()
	job := t.sc.JobName
	p.m.scrapes.WithLabelValues(job, t.addr, typ).Inc()
	err := p.scrapeOnce(ctx, t, typ)
	if err == nil {
		p.m.up.WithLabelValues(job, t.addr, typ).Set(1)
		return
	}
	if ctx.Err() != nil {
		return // stopping, not the target's fault
	}
	var se *scrapeError
	reason := "connect"
	if errors.As(err, &se) {
		reason = se.reason
	}
	p.m.up.WithLabelValues(job, t.addr, typ).Set(0)
	p.m.scrapeErrors.WithLabelValues(job, t.addr, typ, reason).Inc()
	p.log.Warn("scrape failed", "job", job, "instance", t.addr, "type", typ, "reason", reason, "err", err)
}

// scrapeURL is the pprof endpoint of typ on t.
func scrapeURL(t *target, typ string) string {
	u := t.sc.Scheme + "://" + t.addr + strings.TrimSuffix(t.sc.PathPrefix, "/") + t.sc.paths[typ]
	if t.sc.windowed[typ] {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "seconds=" + strconv.Itoa(t.sc.CPUSeconds)
	}
	return u
}

func (p *Profiler) scrapeOnce(ctx context.Context, t *target, typ string) error {
	start := p.opts.now()
	ctx, cancel := context.WithTimeout(ctx, t.sc.ScrapeTimeout)
	defer cancel()
	u := scrapeURL(t, typ)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &scrapeError{"connect", err}
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		if isRedirectRefused(err) {
			return &scrapeError{"redirect", fmt.Errorf("GET %s: %w", u, err)}
		}
		return &scrapeError{timeoutOr(ctx, "connect"), fmt.Errorf("GET %s: %w", u, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &scrapeError{"status", fmt.Errorf("GET %s: status %s", u, resp.Status)}
	}
	limit := int64(t.sc.BodySizeLimit)
	if limit <= 0 {
		limit = p.opts.MaxBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return &scrapeError{timeoutOr(ctx, "connect"), fmt.Errorf("GET %s: reading the body: %w", u, err)}
	}
	if int64(len(body)) > limit {
		return &scrapeError{"too_large", fmt.Errorf("GET %s: body larger than the limit of %d bytes (body_size_limit)", u, limit)}
	}
	if _, err := decodePprof(body, p.opts.MaxDecodedBytes); err != nil {
		return &scrapeError{"invalid", fmt.Errorf("GET %s: %v", u, err)}
	}
	var dur int64
	if t.sc.windowed[typ] {
		dur = int64(t.sc.CPUSeconds) * int64(time.Second)
	}
	pr := model.NewProfile(typ, t.labelsFor(resp.Header), start.UnixNano(), dur, body)
	if err := pr.Validate(); err != nil {
		return &scrapeError{"invalid", err}
	}
	if err := p.publish(ctx, &pr); err != nil {
		if errors.Is(err, queue.ErrFull) {
			return &scrapeError{"queue", fmt.Errorf("the profiles queue is full: %w", err)}
		}
		if errors.Is(err, queue.ErrTooLarge) {
			return &scrapeError{"too_large", fmt.Errorf("GET %s: %w", u, err)}
		}
		return &scrapeError{"queue", err}
	}
	p.m.profiles.WithLabelValues("scrape", typ).Inc()
	p.m.scrapeBytes.WithLabelValues(t.sc.JobName).Add(float64(len(body)))
	return nil
}

func timeoutOr(ctx context.Context, reason string) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "timeout"
	}
	return reason
}
