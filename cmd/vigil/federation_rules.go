package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/vigilhq/vigil/federation/golden"
	"github.com/vigilhq/vigil/internal/config"
)

const rulesSummary = "Write the golden-signal recording rules and SLO burn-rate alerts as Prometheus rule files."

// runRules is `vigil rules`: it generates the rule files that `vigil
// federation` or any Prometheus loads with rule_files
// (docs/metrics-golden.md).
func runRules(_ context.Context, args []string) error {
	fs := config.NewFlagSet("rules", rulesSummary+"\n"+
		"Without --conventions the rules cover the SDK's metrics (presets vigil-http, vigil-http-client,\n"+
		"vigil-grpc, vigil-grpc-client and the process metrics). Presets for other naming schemes: "+
		strings.Join(golden.Presets(), ", ")+".")
	conventions := fs.String("conventions", "", "YAML file of label names, naming conventions and SLO objectives per grade; empty uses the SDK's")
	out := fs.String("out", "rules", "directory the rule files are written to (created if missing; files of the same name are replaced)")
	federated := fs.Bool("federated", false, "leave out the per-datacenter rules that read the services' own series, for a global level that federates the service_grade_dc series (same as federated: true in --conventions)")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	c := golden.DefaultConfig()
	if *conventions != "" {
		var err error
		if c, err = golden.LoadConfig(*conventions); err != nil {
			return err
		}
	}
	c.Federated = c.Federated || *federated
	paths, err := golden.WriteDir(*out, golden.Generate(c))
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(os.Stdout, p)
	}
	return nil
}
