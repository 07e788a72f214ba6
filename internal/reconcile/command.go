package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/internal/auth"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/queue/kafka"
	"github.com/vigilhq/vigil/internal/tlsconfig"
)

// Summary is the one-line description of the reconcile command.
const Summary = "Compare what this collector produced with what the store holds, and re-drive gaps from Kafka."

// Command runs `vigil reconcile` with its command-line arguments.
func Command(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("reconcile", Summary+"\n"+
		"Run it on a collector's host: it reads the collector's ledger under --data-dir (records the queue\n"+
		"accepted, per minute of record time, tenant, service and source) and asks each tenant's store, through\n"+
		"the Loki API at --reconcile.query-url, how many it holds. It exits with an error when records are missing.")
	dataDir := fs.String("data-dir", "./data", "the collector's data directory")
	since, until := config.Duration(time.Hour), config.Duration(2*time.Minute)
	fs.Var(&since, "since", "how far back to look, e.g. 1h or 7d")
	fs.Var(&until, "until", "leave out the most recent minutes, whose records may still be in flight; 0 looks up to now")
	queryURL := fs.String("reconcile.query-url", config.DefaultQueryURL, "base URL of Vigil's query API (Loki)")
	queryTLS := tlsconfig.RegisterClientFlags(fs, "reconcile.query-url", "the query API of --reconcile.query-url")
	tenantList := fs.String("reconcile.tenants", "", "the tenants to check, comma-separated; empty checks every tenant in the ledger")
	keyFile := fs.String("reconcile.tenant-key-file", "", "file holding a key of the tenant checked (--reconcile.tenants), sent as a Bearer token; empty asks for each tenant by X-Scope-OrgID, which Vigil believes from the trusted_proxies of --auth.config")
	surplus := fs.Bool("reconcile.surplus", false, "also list minutes where the store holds more than the ledger")
	redrive := fs.Bool("reconcile.redrive", false, "re-publish the Kafka batches of the minutes with gaps (needs --kafka.brokers; the topic must still retain them)")
	kf := kafka.RegisterFlags(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	// Whole minutes: up to the end of the minute that holds now-until.
	to := time.Now().Add(-time.Duration(until)).Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-time.Duration(since)).Truncate(time.Minute)

	produced, err := ReadProduced(filepath.Join(*dataDir, "reconcile"), from, to)
	if err != nil {
		return err
	}
	tenants := tenantsOf(produced)
	if *tenantList != "" {
		if tenants, err = parseTenants(*tenantList); err != nil {
			return err
		}
	}
	api := StoreAPI{BaseURL: strings.TrimRight(*queryURL, "/")}
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("--reconcile.tenant-key-file: %w", err)
		}
		if api.Key = strings.TrimSpace(string(b)); api.Key == "" {
			return fmt.Errorf("--reconcile.tenant-key-file %s: the file is empty", *keyFile)
		}
	}
	tr, err := queryTLS.Transport()
	if err != nil {
		return fmt.Errorf("--reconcile.query-url: %w", err)
	}
	defer tr.CloseIdleConnections()
	api.Client = &http.Client{Transport: tr}

	// Each tenant's store is asked on its own; a tenant that cannot be
	// asked (a key of another tenant, an address that is no trusted
	// proxy) is reported, and the others are still compared.
	stored, checked := map[Key]int64{}, map[string]bool{}
	var failed []error
	for _, tenant := range tenants {
		bar := newProgressBar("store counts of tenant " + tenant)
		st, err := api.StoredCounts(ctx, tenant, from, to, bar.update)
		bar.done()
		if err != nil {
			failed = append(failed, err)
			continue
		}
		maps.Copy(stored, st)
		checked[tenant] = true
	}
	maps.DeleteFunc(produced, func(k Key, _ int64) bool { return !checked[k.Tenant] })
	gaps := Compare(produced, stored, *surplus)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MINUTE (UTC)\tTENANT\tSERVICE\tSOURCE\tPRODUCED\tSTORED\tMISSING\n")
	for _, g := range gaps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", time.Unix(g.Minute, 0).UTC().Format("2006-01-02 15:04"), g.Tenant, g.Service, g.Source, g.Produced, g.Stored, g.Missing())
	}
	_ = tw.Flush() // a write error to stdout shows as missing output
	window := from.UTC().Format(time.RFC3339) + " – " + to.UTC().Format(time.RFC3339)
	var missing int64
	for _, tenant := range tenants {
		if !checked[tenant] {
			continue
		}
		t := summarize(produced, stored, gaps, func(k Key) bool { return k.Tenant == tenant })
		missing += t.missing
		if len(checked) > 1 {
			fmt.Printf("tenant %s: %s\n", tenant, t)
		}
	}
	fmt.Printf("%s: %s\n", window, summarize(produced, stored, gaps, func(Key) bool { return true }))
	if missing == 0 {
		return errors.Join(failed...)
	}
	if !*redrive {
		return errors.Join(append(failed, fmt.Errorf("%d records missing; if Kafka still retains them, re-drive with --reconcile.redrive", missing))...)
	}
	if !kf.Enabled() {
		return fmt.Errorf("--reconcile.redrive needs --kafka.brokers")
	}
	ko, err := kf.Options("vigil-reconcile-" + hostname())
	if err != nil {
		return err
	}
	// Batches are appended to Kafka after their records' time; look a
	// little past each gap. Re-published batches keep their tenant.
	first, last := gapWindow(gaps)
	n, err := kafka.Redrive(ctx, ko, first.Add(-time.Minute), last.Add(5*time.Minute), func(p int32, total int) {
		fmt.Fprintf(os.Stderr, "redrive: partition %d done, %d batches re-published\n", p, total)
	})
	if err != nil {
		return errors.Join(append(failed, fmt.Errorf("redrive: %w (%d batches re-published)", err, n))...)
	}
	fmt.Printf("re-published %d batches from %s to %s; run reconcile again once the ingesters caught up\n", n, first.Format(time.RFC3339), last.Format(time.RFC3339))
	return errors.Join(failed...)
}

// parseTenants reads --reconcile.tenants: tenant ids, comma-separated,
// each checked, each once.
func parseTenants(list string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !auth.ValidTenant(t) {
			return nil, fmt.Errorf("--reconcile.tenants: %q is not a tenant id (a letter or digit, then at most 127 letters, digits, '_', '.' or '-')", t)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--reconcile.tenants %q: no tenant", list)
	}
	return out, nil
}

// tenantsOf returns the tenants with records in produced, sorted; the
// default tenant alone when there are none.
func tenantsOf(produced map[Key]int64) []string {
	seen := map[string]bool{}
	for k := range produced {
		seen[k.Tenant] = true
	}
	if len(seen) == 0 {
		return []string{auth.DefaultTenant}
	}
	return slices.Sorted(maps.Keys(seen))
}

// summary is what reconcile found for the keys of some tenants.
type summary struct {
	produced, stored, missing int64
	minutes                   int
}

func summarize(produced, stored map[Key]int64, gaps []Gap, of func(Key) bool) summary {
	var s summary
	for k, n := range produced {
		if of(k) {
			s.produced += n
			s.stored += min(stored[k], n)
		}
	}
	var ofGaps []Gap
	for _, g := range gaps {
		if of(g.Key) {
			ofGaps = append(ofGaps, g)
			s.missing += max(g.Missing(), 0)
		}
	}
	s.minutes = countMissing(ofGaps)
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("produced %d, stored %d of them, %d missing in %d minute(s)", s.produced, s.stored, s.missing, s.minutes)
}

func countMissing(gaps []Gap) int {
	n := 0
	for _, g := range gaps {
		if g.Missing() > 0 {
			n++
		}
	}
	return n
}

func gapWindow(gaps []Gap) (first, last time.Time) {
	for _, g := range gaps {
		if g.Missing() <= 0 {
			continue
		}
		t := time.Unix(g.Minute, 0)
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.Add(time.Minute).After(last) {
			last = t.Add(time.Minute)
		}
	}
	return first, last
}

// progressBar draws a bar on stderr for work that takes more than one step.
type progressBar struct {
	name  string
	shown bool
}

func newProgressBar(name string) *progressBar { return &progressBar{name: name} }

func (p *progressBar) update(done, total time.Duration) {
	if done >= total && !p.shown {
		return // finished in one step: no bar needed
	}
	p.shown = true
	const width = 30
	n := int(float64(width) * float64(done) / float64(total))
	fmt.Fprintf(os.Stderr, "\r%s [%s%s] %3.0f%%", p.name, strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*float64(done)/float64(total))
}

func (p *progressBar) done() {
	if p.shown {
		fmt.Fprintln(os.Stderr)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
