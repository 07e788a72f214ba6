package main

//lint:file-ignore SA1019 the dashboards are provisioned as Grafana's v1 JSON model, the one file provisioning loads; dashboardv2 is another format

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/federation/golden"
	"github.com/vigilhq/vigil/internal/logql"
)

// committed is the directory holding the generated files in the repository.
const committed = ".."

// TestCommittedFilesAreGenerated keeps deploy/grafana generated: the
// files are written again into a temporary directory and must equal the
// committed ones, and no other file may sit beside them
// (go run ./deploy/grafana/gen rewrites them).
func TestCommittedFilesAreGenerated(t *testing.T) {
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := write(dir, files); err != nil {
		t.Fatal(err)
	}
	for p := range files {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(committed, p))
		if err != nil {
			t.Errorf("%v; run go run ./deploy/grafana/gen", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/grafana/%s differs from the generator's output; edit the generator and run go run ./deploy/grafana/gen", p)
		}
	}
	for _, sub := range []string{"provisioning", "dashboards"} {
		err := filepath.WalkDir(filepath.Join(committed, sub), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(committed, path)
			if _, ok := files[filepath.ToSlash(rel)]; !ok {
				t.Errorf("deploy/grafana/%s is not generated; remove it or generate it", filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// loadDashboard reads the committed dashboard, strictly as the
// foundation SDK's model of Grafana's dashboard schema.
func loadDashboard(t *testing.T) (raw map[string]any, d dashboard.Dashboard) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(committed, goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	// The SDK returns its error list as an error even when it is empty.
	if err := d.UnmarshalJSONStrict(b); err != nil {
		var be cog.BuildErrors
		if !errors.As(err, &be) || len(be) > 0 {
			t.Fatalf("%s does not decode as a dashboard: %v", goldenPath, err)
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return raw, d
}

// walk calls f on every JSON object of v.
func walk(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, e := range v {
			walk(e, f)
		}
	case []any:
		for _, e := range v {
			walk(e, f)
		}
	}
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)

// promQueries returns the dashboard's PromQL: the panels' expressions and
// the series selectors of its label_values variables.
func promQueries(t *testing.T, raw map[string]any) []string {
	t.Helper()
	var qs []string
	walk(raw["panels"], func(o map[string]any) {
		if e, ok := o["expr"].(string); ok {
			qs = append(qs, e)
		}
	})
	walk(raw["templating"], func(o map[string]any) {
		if o["type"] != "query" {
			return
		}
		q, _ := o["query"].(string)
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %v: query %q is not label_values(selector, label)", o["name"], q)
			return
		}
		qs = append(qs, m[1])
	})
	return qs
}

// signals returns the options of the signal variable.
func signals(t *testing.T, raw map[string]any) []string {
	t.Helper()
	var out []string
	walk(raw["templating"], func(o map[string]any) {
		if o["name"] == signalVar {
			out = strings.Split(o["query"].(string), ",")
		}
	})
	if len(out) == 0 {
		t.Fatal("the dashboard has no signal variable")
	}
	return out
}

// TestDashboardQueriesReadRecordedSeries checks that every PromQL
// expression of the dashboard parses, for every value of the signal
// variable, and reads only series that federation/golden's default rules
// record — a renamed rule breaks this test, not the dashboard in
// production.
func TestDashboardQueriesReadRecordedSeries(t *testing.T) {
	raw, _ := loadDashboard(t)
	c := golden.DefaultConfig()
	recordedNames := map[string]bool{}
	for _, f := range golden.Generate(c) {
		for _, g := range f.Groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recordedNames[r.Record] = true
				}
			}
		}
	}
	// A convention without an in-flight gauge (spans) records none: its
	// in-flight panels are empty, as their descriptions say.
	noInflight := map[string]bool{}
	for _, cv := range c.Conventions {
		if cv.Inflight == "" {
			noInflight[cv.Signal] = true
		}
	}
	queries := promQueries(t, raw)
	if len(queries) < 10 {
		t.Fatalf("found %d queries in the dashboard; the test reads the wrong file", len(queries))
	}
	used := map[string]bool{}
	p := parser.NewParser(parser.Options{})
	for _, signal := range signals(t, raw) {
		vars := strings.NewReplacer("${signal}", signal, "$grade", ".*", "$service", ".*", "$dc", ".*")
		for _, q := range queries {
			expr := vars.Replace(q)
			if strings.Contains(expr, "$") {
				t.Errorf("%q: a variable the dashboard does not define", q)
				continue
			}
			node, err := p.ParseExpr(expr)
			if err != nil {
				t.Errorf("signal %s: %q does not parse: %v", signal, expr, err)
				continue
			}
			parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				used[vs.Name] = true
				for _, m := range vs.LabelMatchers {
					if m.Name != "__name__" && !slices.Contains([]string{"service", "grade", "dc"}, m.Name) {
						t.Errorf("%q: label %s is not a label of the recorded series", expr, m.Name)
					}
				}
				if recordedNames[vs.Name] {
					return nil
				}
				if noInflight[signal] && strings.Contains(vs.Name, ":"+signal+"_inflight_requests:") {
					return nil
				}
				t.Errorf("signal %s: %s is not recorded by federation/golden's default rules", signal, vs.Name)
				return nil
			})
		}
	}
	for _, want := range []string{
		"service_grade_dc:vigil_http_requests:rate5m",
		"service_grade:vigil_http_errors:ratio_rate5m",
		"service_grade:vigil_http_request_duration_seconds:p99_rate5m",
		"service_grade:spans_requests:rate5m",
	} {
		if !used[want] {
			t.Errorf("the dashboard never reads %s", want)
		}
	}
}

// provisioned reads the committed data source provisioning file.
func provisioned(t *testing.T) datasourcesFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(committed, datasourcesPath))
	if err != nil {
		t.Fatal(err)
	}
	var f datasourcesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if f.APIVersion != 1 {
		t.Errorf("apiVersion %d; want 1", f.APIVersion)
	}
	return f
}

// linkVarValues stand for Grafana's data link variables when a link is
// decoded.
var linkVarValues = strings.NewReplacer("${__field.labels.service}", "checkout", "${__from}", "1700000000000", "${__to}", "1700003600000")

// TestDatasourceReferencesExist checks that every data source the
// dashboard's queries, variables and links name, and every data source
// the provisioned ones link to, is provisioned, with the right type.
func TestDatasourceReferencesExist(t *testing.T) {
	types := map[string]string{}
	f := provisioned(t)
	for _, ds := range f.Datasources {
		if types[ds.UID] != "" {
			t.Errorf("uid %s provisioned twice", ds.UID)
		}
		types[ds.UID] = ds.Type
	}
	check := func(where, uid, typ string) {
		t.Helper()
		got, ok := types[uid]
		switch {
		case !ok:
			t.Errorf("%s: data source uid %q is not provisioned", where, uid)
		case typ != "" && got != typ:
			t.Errorf("%s: data source %s is of type %s, the reference says %s", where, uid, got, typ)
		}
	}
	for _, ds := range f.Datasources {
		walk(ds.JSONData, func(o map[string]any) {
			if uid, ok := o["datasourceUid"].(string); ok {
				check("provisioned "+ds.UID, uid, "")
			}
		})
	}

	raw, _ := loadDashboard(t)
	refs, links := 0, 0
	walk(raw, func(o map[string]any) {
		if ref, ok := o["datasource"].(map[string]any); ok {
			refs++
			uid, _ := ref["uid"].(string)
			typ, _ := ref["type"].(string)
			check("dashboard", uid, typ)
		}
		if l, ok := o["url"].(string); ok && o["type"] == "link" {
			links++
			u, err := url.Parse(linkVarValues.Replace(l))
			if err != nil {
				t.Errorf("data link %q: %v", l, err)
				return
			}
			var panes map[string]struct {
				Datasource string         `json:"datasource"`
				Queries    []exploreQuery `json:"queries"`
			}
			if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil || len(panes) != 1 {
				t.Errorf("data link %q: panes is not one Explore pane: %v", l, err)
				return
			}
			for _, p := range panes {
				check("data link", p.Datasource, "")
				for _, q := range p.Queries {
					check("data link", q.Datasource.UID, q.Datasource.Type)
					if q.Expr != "" {
						if _, err := logql.ParseExpr(q.Expr); err != nil {
							t.Errorf("data link: LogQL %q does not parse: %v", q.Expr, err)
						}
					}
					if q.Datasource.Type == typeJaeger && q.Service != "checkout" {
						t.Errorf("data link to traces searches service %q; want the series' service", q.Service)
					}
				}
			}
		}
	})
	if refs == 0 || links == 0 {
		t.Errorf("found %d data source references and %d data links in the dashboard", refs, links)
	}
}

// interpolate expands a provisioning value as Grafana does when it loads
// the file: $$ is a literal dollar, other $VAR and ${VAR} environment
// variables.
func interpolate(s string, env map[string]string) string {
	parts := strings.Split(s, "$$")
	for i, p := range parts {
		parts[i] = os.Expand(p, func(k string) string { return env[k] })
	}
	return strings.Join(parts, "$")
}

// TestProvisioningAsGrafanaLoadsIt checks the values Grafana sees after
// its environment expansion: every data source at VIGIL_URL, the Sentry
// token from VIGIL_DUMPS_TOKEN, and the templates Grafana itself fills
// (${__trace.traceId}, ${__value.raw}) kept intact.
func TestProvisioningAsGrafanaLoadsIt(t *testing.T) {
	env := map[string]string{urlVar: "http://vigil:16686", tokenVar: "s3cret"}
	byType := map[string]datasource{}
	for _, ds := range provisioned(t).Datasources {
		byType[ds.Type] = ds
		if got := interpolate(ds.URL, env); got != env[urlVar] {
			t.Errorf("%s: url %q; want %q", ds.Name, got, env[urlVar])
		}
	}
	for _, typ := range []string{typePrometheus, typeLoki, typeJaeger, typePyroscope, typeSentry} {
		if _, ok := byType[typ]; !ok {
			t.Errorf("no data source of type %s", typ)
		}
	}

	sentry := byType[typeSentry]
	if got := interpolate(sentry.JSONData["url"].(string), env); got != env[urlVar] {
		t.Errorf("sentry jsonData.url %q; want %q", got, env[urlVar])
	}
	if got := interpolate(sentry.SecureJSONData["authToken"], env); got != "s3cret" {
		t.Errorf("sentry authToken %q; want the token", got)
	}

	toLogs := byType[typeJaeger].JSONData["tracesToLogsV2"].(map[string]any)
	q := interpolate(toLogs["query"].(string), env)
	if q != traceLogsQuery {
		t.Errorf("tracesToLogsV2.query reaches Grafana as %q; want %q", q, traceLogsQuery)
	}
	if toLogs["filterByTraceID"] != true || toLogs["datasourceUid"] != uidLoki {
		t.Errorf("tracesToLogsV2 = %v; want the Loki data source, filtered by trace id", toLogs)
	}
	filled := strings.ReplaceAll(q, "${__trace.traceId}", "4bf92f3577b34da6a3ce929d0e0e4736")
	if _, err := logql.ParseExpr(filled); err != nil {
		t.Errorf("trace to logs query %q does not parse: %v", filled, err)
	}
	if p := byType[typeJaeger].JSONData["tracesToProfiles"].(map[string]any); p["datasourceUid"] != uidPyroscope {
		t.Errorf("tracesToProfiles = %v; want the Pyroscope data source", p)
	}

	derived := byType[typeLoki].JSONData["derivedFields"].([]any)[0].(map[string]any)
	if got := interpolate(derived["url"].(string), env); got != "${__value.raw}" {
		t.Errorf("derived field url reaches Grafana as %q; want ${__value.raw}", got)
	}
}

// TestLinksOnServiceSeries checks that the panels offering a service's
// traces and logs show series that carry the service label, so that
// ${__field.labels.service} is never empty, and that the per-service
// panels all offer them.
func TestLinksOnServiceSeries(t *testing.T) {
	raw, _ := loadDashboard(t)
	withLinks := 0
	for _, p := range raw["panels"].([]any) {
		p := p.(map[string]any)
		if p["type"] == "row" {
			continue
		}
		var links []any
		if fc, ok := p["fieldConfig"].(map[string]any); ok {
			links, _ = fc["defaults"].(map[string]any)["links"].([]any)
		}
		perService := true
		for _, tg := range p["targets"].([]any) {
			if !strings.HasPrefix(tg.(map[string]any)["expr"].(string), "service_grade") {
				perService = false
			}
		}
		switch {
		case len(links) > 0 && !perService:
			t.Errorf("panel %q has links to a service but shows series without a service label", p["title"])
		case len(links) != 2 && perService:
			t.Errorf("panel %q shows services but has %d links; want traces and logs", p["title"], len(links))
		case len(links) > 0:
			withLinks++
		}
	}
	if withLinks == 0 {
		t.Error("no panel links to traces and logs")
	}
}
