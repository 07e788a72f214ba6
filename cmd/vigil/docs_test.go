package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue/kafka"
)

// TestEveryFlagIsDocumented keeps docs/operations.md true: each flag of
// each daemon must appear there.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := config.NewFlagSet("test", "")
	addCommonFlags(fs)
	addCollectorFlags(fs)
	addQueueFlags(fs)
	addIngesterFlags(fs, true)
	addStoreFlags(fs)
	addQueryFlags(fs)
	kafka.RegisterFlags(fs)
	addESFlags(fs)
	addDumpsFlags(fs)
	addProfilerFlags(fs)
	addFederationFlags(fs)
	addMetricsURLFlag(fs)
	addQueryMetricsURLFlag(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(doc), "`--"+f.Name+"`") {
			t.Errorf("flag --%s is not documented in docs/operations.md", f.Name)
		}
	})
}
