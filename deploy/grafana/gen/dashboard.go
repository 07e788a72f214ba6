package main

//lint:file-ignore SA1019 the dashboards are provisioned as Grafana's v1 JSON model, the one file provisioning loads; dashboardv2 is another format

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/vigilhq/vigil/federation/golden"
)

// goldenUID is the golden-signals dashboard's uid, part of its URL.
const goldenUID = "vigil-golden-signals"

// Variables of the dashboard. signalVar is the metric part of the
// recorded names (vigil_http, spans, …), so one dashboard serves every
// convention of federation/golden.
const (
	signalVar  = "signal"
	gradeVar   = "grade"
	serviceVar = "service"
	dcVar      = "dc"
)

// window is the range of the recorded rates (federation/golden's
// rate_window); the tests check every name against the rules generator.
const window = "5m"

// Selectors of the recorded series by the dashboard's variables.
const (
	gradeSel   = `{grade=~"$grade"}`
	serviceSel = `{grade=~"$grade", service=~"$service"}`
	dcSel      = `{grade=~"$grade", service=~"$service", dc=~"$dc"}`
)

var promRef = common.DataSourceRef{Type: cog.ToPtr(typePrometheus), Uid: cog.ToPtr(uidPrometheus)}

// recorded returns a recorded series' name for the dashboard's signal:
// recorded("service_grade", "requests:rate") is
// service_grade:${signal}_requests:rate5m.
func recorded(level, metric string) string {
	return level + ":${" + signalVar + "}_" + metric + window
}

// process returns a recorded process series' name, which has no signal.
func process(level, metric string) string {
	return level + ":" + metric
}

// goldenDashboard builds the golden-signals dashboard: an overview per
// grade, then one row per grade (repeated over the grade variable) with
// the signals per service, then per service and datacenter.
func goldenDashboard(c *golden.Config) (dashboard.Dashboard, error) {
	ids := new(panelIDs)
	b := dashboard.NewDashboardBuilder("Vigil golden signals").
		Uid(goldenUID).
		Description("Traffic, errors, latency and saturation per grade, service and datacenter, from the recording rules of federation/golden (docs/metrics-golden.md).").
		Tags([]string{"vigil", "golden-signals"}).
		Refresh("1m").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Readonly().
		WithVariable(signalVariable(c)).
		WithVariable(labelVariable(gradeVar, "Grade", "label_values("+recorded("service_grade", "requests:rate")+", grade)")).
		WithVariable(labelVariable(serviceVar, "Service", "label_values("+recorded("service_grade", "requests:rate")+gradeSel+", service)")).
		WithVariable(labelVariable(dcVar, "Datacenter", "label_values("+recorded("service_grade_dc", "requests:rate")+serviceSel+", dc)"))

	b.WithRow(dashboard.NewRowBuilder("All grades").Id(ids.next()))
	for _, p := range overviewPanels() {
		b.WithPanel(p.Id(ids.next()))
	}
	b.WithRow(dashboard.NewRowBuilder("Grade $grade").Id(ids.next()).Repeat(gradeVar))
	for _, p := range append(levelPanels(serviceLevel), levelPanels(datacenterLevel)...) {
		b.WithPanel(p.Id(ids.next()))
	}
	return b.Build()
}

type panelIDs uint32

func (p *panelIDs) next() uint32 { *p++; return uint32(*p) }

// signalVariable offers the signals of the rules generator's default
// conventions, the SDK's HTTP server metrics first.
func signalVariable(c *golden.Config) cog.Builder[dashboard.VariableModel] {
	var names []string
	for _, cv := range c.Conventions {
		names = append(names, cv.Signal)
	}
	return dashboard.NewCustomVariableBuilder(signalVar).
		Label("Signal").
		Description("The recorded metrics to show: the SDK's HTTP or gRPC server or client metrics, or spans (for services that send spans only).").
		Values(dashboard.StringOrMap{String: cog.ToPtr(strings.Join(names, ","))}).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: cog.ToPtr(names[0])},
			Value: dashboard.StringOrArrayOfString{String: cog.ToPtr(names[0])},
		})
}

// labelVariable is a multi-value variable of a label's values among the
// recorded series; "All" is the regular expression .* so that selectors
// stay short with hundreds of services.
func labelVariable(name, label, query string) cog.Builder[dashboard.VariableModel] {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(promRef).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promRef).Expr(expr).LegendFormat(legend).Range()
}

// panel is a time series panel of the recorded series; with links, each
// series' menu leads to its service's traces and logs.
func panel(title, unit, description string, links bool, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(promRef).
		Unit(unit).
		Min(0).
		Height(8).
		Span(8).
		FillOpacity(5).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			Calcs([]string{"mean", "max", "lastNotNull"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	for i, t := range targets {
		p.WithTarget(t.RefId(string(rune('A' + i))))
	}
	if links {
		p.DataLinks(serviceLinks())
	}
	return p
}

// overviewPanels compare the grades: every service of a grade together.
func overviewPanels() []*timeseries.PanelBuilder {
	return []*timeseries.PanelBuilder{
		panel("Request rate by grade", "reqps", "Requests per second of all the services of each grade.", false,
			query(recorded("grade", "requests:rate")+gradeSel, "grade {{grade}}")),
		panel("Error ratio by grade", "percentunit", "Failed requests ÷ requests, summed over the services of each grade.", false,
			query(recorded("grade", "errors:ratio_rate")+gradeSel, "grade {{grade}}")),
		panel("p99 latency by grade", "s", "99th percentile of the request duration over every request of the grade.", false,
			query(recorded("grade", "request_duration_seconds:p99_rate")+gradeSel, "grade {{grade}}")),
	}
}

// level is a level of the recorded series the row's panels show.
type level struct {
	name   string // service_grade or service_grade_dc
	sel    string // selector by the dashboard's variables
	legend string // series legend
	suffix string // of the panels' titles
	of     string // "of each service", "of each service in each datacenter"
	// quantiles of the latency panel; heap adds the Go heap to the
	// memory panel.
	quantiles []string
	heap      bool
}

// serviceLevel sums each service across datacenters; datacenterLevel
// splits it by datacenter.
var (
	serviceLevel = level{
		name: "service_grade", sel: serviceSel, legend: "{{service}}", of: "of each service, all datacenters",
		quantiles: []string{"p50", "p90", "p99"}, heap: true,
	}
	datacenterLevel = level{
		name: "service_grade_dc", sel: dcSel, legend: "{{service}} {{dc}}", suffix: " per datacenter",
		of: "of each service in each datacenter", quantiles: []string{"p99"},
	}
)

// levelPanels show the four signals of each service of the row's grade
// at a level.
func levelPanels(l level) []*timeseries.PanelBuilder {
	q := func(name, legend string) *prometheus.DataqueryBuilder { return query(name+l.sel, l.legend+legend) }
	latency := make([]*prometheus.DataqueryBuilder, 0, len(l.quantiles))
	for _, p := range l.quantiles {
		latency = append(latency, q(recorded(l.name, "request_duration_seconds:"+p+"_rate"), " "+p))
	}
	memory := []*prometheus.DataqueryBuilder{q(process(l.name, "process_resident_memory_bytes:sum"), " resident")}
	if l.heap {
		memory = append(memory, q(process(l.name, "go_memstats_heap_inuse_bytes:sum"), " heap"))
	}
	return []*timeseries.PanelBuilder{
		panel("Request rate"+l.suffix, "reqps", "Traffic: requests per second "+l.of+".", true,
			q(recorded(l.name, "requests:rate"), "")),
		panel("Error ratio"+l.suffix, "percentunit", "Errors: failed requests ÷ requests "+l.of+", the ratio of the sums over every instance.", true,
			q(recorded(l.name, "errors:ratio_rate"), "")),
		panel("Latency "+strings.Join(l.quantiles, " / ")+l.suffix, "s", "Latency: quantiles of the request duration "+l.of+", from native or classic histograms (spans: from their durations).", true,
			latency...),
		panel("In-flight requests"+l.suffix, "short", "Saturation: requests in progress "+l.of+", averaged over the window and summed over instances. Not recorded for spans.", true,
			q(recorded(l.name, "inflight_requests:avg"), "")),
		panel("CPU"+l.suffix, "percentunit", "Saturation: CPU seconds used per second ÷ the cores the Go runtime may use (GOMAXPROCS), "+l.of+".", true,
			q(process(l.name, "process_cpu_utilisation:ratio_rate"+window), "")),
		panel("Memory"+l.suffix, "bytes", "Saturation: memory "+l.of+", summed over instances.", true,
			memory...),
	}
}

// marshalDashboard encodes the dashboard as Grafana reads it from a
// provisioned file.
func marshalDashboard(d dashboard.Dashboard) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode dashboard %s: %w", *d.Uid, err)
	}
	return append(b, '\n'), nil
}
