package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/childproc"
)

// metricsServer is a Vigil federation or a real Prometheus that a metrics
// benchmark started as a child process.
type metricsServer struct {
	name string
	addr string // host:port of its HTTP API and /metrics
	proc *childproc.Process
}

// benchPromConfig is the configuration both servers get: the same global
// settings and the loopback targets from a file_sd file (empty until the
// benchmark writes it), with the dc label per group.
func benchPromConfig(interval time.Duration, sdFile string, ruleFiles ...string) string {
	c := fmt.Sprintf("global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: 1m\n"+
		"scrape_configs:\n  - job_name: bench\n    file_sd_configs:\n      - files: [%q]\n        refresh_interval: 5s\n",
		interval, min(interval, 10*time.Second), sdFile)
	if len(ruleFiles) > 0 {
		c += "rule_files:\n"
		for _, f := range ruleFiles {
			c += fmt.Sprintf("  - %q\n", f)
		}
	}
	return c
}

// startVigilFederation starts `vigil federation` in dir with the
// configuration text; rules turns the generated golden rules on.
func startVigilFederation(dir, cfg string, rules bool) (*metricsServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "federation.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p := &childproc.Process{Binary: exe, Args: []string{"federation", "--log.level", "warn", "--data-dir", filepath.Join(dir, "data"),
		"--federation.listen", addr, "--federation.config", cfgFile, "--federation.golden-rules=" + strconv.FormatBool(rules)},
		Ready: addr, ReadyTimeout: time.Minute, Stderr: os.Stderr}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("vigil federation: %w", err)
	}
	return &metricsServer{name: "Vigil federation", addr: addr, proc: p}, nil
}

// startRealPrometheus starts the Prometheus binary in dir with the
// configuration text, its remote-write receiver on.
func startRealPrometheus(bin, dir, cfg string) (*metricsServer, error) {
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("--bench.prometheus %s: %w (Debian: apt-get install prometheus)", bin, err)
	}
	addr, err := childproc.FreePort()
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p := &childproc.Process{Binary: bin, Args: []string{"--config.file=" + cfgFile, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn", "--web.enable-remote-write-receiver"},
		Ready: addr, ReadyPath: "/-/ready", ReadyTimeout: time.Minute, Stderr: os.Stderr}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	return &metricsServer{name: "Prometheus " + promVersion(bin), addr: addr, proc: p}, nil
}

// promVersion is the version `prometheus --version` prints, e.g. 2.42.0.
func promVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	var v string
	_, _ = fmt.Sscanf(string(out), "prometheus, version %s", &v)
	return v
}

func (s *metricsServer) stop() { stop(s.proc) }

// appended is the server's own count of samples appended to its head.
func (s *metricsServer) appended() float64 {
	return metric(s.addr, "prometheus_tsdb_head_samples_appended_total")
}

// instant evaluates a PromQL expression that returns one number; NaN when
// the result is empty.
func (s *metricsServer) instant(q string) (float64, error) {
	resp, err := http.Get("http://" + s.addr + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: query %s: %s %s", s.name, q, resp.Status, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("%s: query %s: %w", s.name, q, err)
	}
	if len(r.Data.Result) == 0 {
		return 0, errEmpty
	}
	str, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(str, 64)
}

// errEmpty is returned by instant for a query whose result is empty.
var errEmpty = errors.New("empty result")
