// Command gen writes Vigil's Grafana provisioning — the data sources,
// all reading Vigil's query port, and the golden-signals dashboard —
// into deploy/grafana (docs: deploy/grafana/README.md). The dashboard is
// built with grafana-foundation-sdk on the recorded series of
// federation/golden's default rules; the tests fail when the committed
// files differ from what this generator writes.
//
//	go run ./deploy/grafana/gen [-out deploy/grafana]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigilhq/vigil/federation/golden"
)

// Paths of the generated files, relative to the output directory.
const (
	datasourcesPath = "provisioning/datasources/vigil.yaml"
	providersPath   = "provisioning/dashboards/vigil.yaml"
	goldenPath      = "dashboards/golden-signals.json"
)

func main() {
	out := flag.String("out", filepath.Join("deploy", "grafana"), "directory the provisioning and dashboards are written to")
	flag.Parse()
	files, err := generate()
	if err == nil {
		err = write(*out, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// generate returns the files' contents by path.
func generate() (map[string][]byte, error) {
	files := map[string][]byte{}
	var err error
	if files[datasourcesPath], err = marshalYAML(datasources()); err != nil {
		return nil, err
	}
	if files[providersPath], err = marshalYAML(dashboardProviders()); err != nil {
		return nil, err
	}
	d, err := goldenDashboard(golden.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("cannot build the golden-signals dashboard: %w", err)
	}
	if files[goldenPath], err = marshalDashboard(d); err != nil {
		return nil, err
	}
	return files, nil
}

// write writes the files under dir, each to a temporary name then
// renamed, so a Grafana polling the directory never reads half a file.
func write(dir string, files map[string][]byte) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // #nosec G301 -- provisioning files for Grafana, which runs as another user
			return fmt.Errorf("cannot create %s: %w", filepath.Dir(path), err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, files[p], 0o644); err != nil { // #nosec G306 -- read by Grafana, which runs as another user
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
	}
	return nil
}
