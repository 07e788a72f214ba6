// Command vigil is Vigil's single binary: every daemon, all-in-one mode and
// the command-line tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigilhq/vigil/internal/bench"
	"github.com/vigilhq/vigil/internal/reconcile"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"all-in-one", allInOneSummary, runAllInOne},
		{"collector", collectorSummary, runCollector},
		{"ingester", ingesterSummary, runIngester},
		{"query", querySummary, runQuery},
		{"profiler", profilerSummary, runProfiler},
		{"federation", federationSummary, runFederation},
		{"reconcile", reconcile.Summary, reconcile.Command},
		{"bench", bench.Summary, bench.Run},
		{"rules", rulesSummary, runRules},
		{"version", "Print the version.", func(context.Context, []string) error {
			fmt.Println("vigil", version)
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Vigil — metrics, logs, traces, profiles and dumps in one binary.\n\nUsage: vigil <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun vigil <command> --help for the flags of a command.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage(os.Stdout)
		return
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "vigil %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "vigil: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}
