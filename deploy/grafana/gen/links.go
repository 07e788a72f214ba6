package main

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Grafana's data link variables, put into the links after escaping; the
// placeholders stand for them meanwhile (letters only, so escaping
// leaves them alone).
var linkVars = strings.NewReplacer(
	"VIGILLINKSERVICE", "${__field.labels.service}",
	"VIGILLINKFROM", "${__from}",
	"VIGILLINKTO", "${__to}",
)

// exploreQuery is one query of an Explore pane.
type exploreQuery struct {
	RefID      string       `json:"refId"`
	Datasource exploreDSRef `json:"datasource"`
	QueryType  string       `json:"queryType,omitempty"`
	Service    string       `json:"service,omitempty"`
	Expr       string       `json:"expr,omitempty"`
}

type exploreDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type explorePane struct {
	Datasource string         `json:"datasource"`
	Queries    []exploreQuery `json:"queries"`
	Range      struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"range"`
}

// exploreURL is a link to Grafana's Explore (URL schema version 1, one
// pane) running q over the panel's time range.
func exploreURL(q exploreQuery) string {
	p := explorePane{Datasource: q.Datasource.UID, Queries: []exploreQuery{q}}
	p.Range.From, p.Range.To = "VIGILLINKFROM", "VIGILLINKTO"
	b, err := json.Marshal(map[string]explorePane{"vigil": p})
	if err != nil {
		panic(err) // only strings: cannot fail
	}
	return linkVars.Replace("/explore?schemaVersion=1&orgId=1&panes=" + url.QueryEscape(string(b)))
}

// serviceLogsQuery is the LogQL query of a service's logs.
const serviceLogsQuery = `{service="VIGILLINKSERVICE"}`

// serviceLinks lead from a series of a service to its traces (Jaeger's
// search by service) and its logs.
func serviceLinks() []cog.Builder[dashboard.DashboardLink] {
	traces := exploreURL(exploreQuery{
		RefID: "A", Datasource: exploreDSRef{Type: typeJaeger, UID: uidJaeger},
		QueryType: "search", Service: "VIGILLINKSERVICE",
	})
	logs := exploreURL(exploreQuery{
		RefID: "A", Datasource: exploreDSRef{Type: typeLoki, UID: uidLoki},
		QueryType: "range", Expr: serviceLogsQuery,
	})
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("Traces of ${__field.labels.service}").Type(dashboard.DashboardLinkTypeLink).Url(traces).TargetBlank(true),
		dashboard.NewDashboardLinkBuilder("Logs of ${__field.labels.service}").Type(dashboard.DashboardLinkTypeLink).Url(logs).TargetBlank(true),
	}
}
