package main

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The data sources' uids are fixed so that the dashboard's queries and
// links, and the data sources' links to each other, find them.
const (
	uidPrometheus = "vigil-prometheus"
	uidLoki       = "vigil-loki"
	uidJaeger     = "vigil-jaeger"
	uidPyroscope  = "vigil-pyroscope"
	uidSentry     = "vigil-sentry"
)

// Plugin ids of the data sources' types.
const (
	typePrometheus = "prometheus"
	typeLoki       = "loki"
	typeJaeger     = "jaeger"
	typePyroscope  = "grafana-pyroscope-datasource"
	typeSentry     = "grafana-sentry-datasource"
)

// urlVar is the environment variable Grafana reads Vigil's query URL from
// when it loads the provisioning file; tokenVar holds a token of
// --dumps.tokens for the Sentry data source.
const (
	urlVar   = "VIGIL_URL"
	tokenVar = "VIGIL_DUMPS_TOKEN" // #nosec G101 -- the name of an environment variable, not a credential
)

// sentryOrg is the organization slug Vigil answers to (--dumps.org).
const sentryOrg = "vigil"

// profileTypeCPU is the profile type traces link to: a Go CPU profile as
// Vigil's Pyroscope querier names it (docs/profiles.md).
const profileTypeCPU = "cpu:cpu:nanoseconds:cpu:nanoseconds"

// datasourcesFile is a Grafana data source provisioning file (apiVersion 1).
type datasourcesFile struct {
	APIVersion  int          `yaml:"apiVersion"`
	Datasources []datasource `yaml:"datasources"`
}

type datasource struct {
	Name           string            `yaml:"name"`
	Type           string            `yaml:"type"`
	UID            string            `yaml:"uid"`
	Access         string            `yaml:"access"`
	URL            string            `yaml:"url"`
	IsDefault      bool              `yaml:"isDefault"`
	Editable       bool              `yaml:"editable"`
	JSONData       map[string]any    `yaml:"jsonData,omitempty"`
	SecureJSONData map[string]string `yaml:"secureJsonData,omitempty"`
}

// literal escapes the dollars of a Grafana template (${__trace.traceId})
// so that provisioning, which expands environment variables in every
// value, hands it to Grafana unchanged.
func literal(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// traceLogsQuery is the LogQL query of a span's logs: every log line of
// the trace, whatever its service (Vigil's Jaeger processes carry no
// service.name tag to map to the service label).
const traceLogsQuery = `{service=~".+"} | trace_id="${__trace.traceId}"`

// datasources returns the data sources, all reading Vigil's query port.
func datasources() datasourcesFile {
	url := "${" + urlVar + "}"
	return datasourcesFile{APIVersion: 1, Datasources: []datasource{
		{
			Name: "Vigil metrics", Type: typePrometheus, UID: uidPrometheus, Access: "proxy", URL: url, IsDefault: true,
			JSONData: map[string]any{
				"httpMethod":     "POST",
				"prometheusType": "Prometheus",
				"exemplarTraceIdDestinations": []map[string]any{
					{"name": "trace_id", "datasourceUid": uidJaeger},
				},
			},
		},
		{
			Name: "Vigil logs", Type: typeLoki, UID: uidLoki, Access: "proxy", URL: url,
			JSONData: map[string]any{
				"maxLines": 1000,
				"derivedFields": []map[string]any{{
					"name":            "TraceID",
					"matcherType":     "label",
					"matcherRegex":    "trace_id",
					"datasourceUid":   uidJaeger,
					"url":             literal("${__value.raw}"),
					"urlDisplayLabel": "Trace",
				}},
			},
		},
		{
			Name: "Vigil traces", Type: typeJaeger, UID: uidJaeger, Access: "proxy", URL: url,
			JSONData: map[string]any{
				"tracesToLogsV2": map[string]any{
					"datasourceUid":      uidLoki,
					"spanStartTimeShift": "-5m",
					"spanEndTimeShift":   "5m",
					"filterByTraceID":    true,
					"filterBySpanID":     false,
					"customQuery":        true,
					"query":              literal(traceLogsQuery),
				},
				"tracesToProfiles": map[string]any{
					"datasourceUid": uidPyroscope,
					"profileTypeId": profileTypeCPU,
					"customQuery":   false,
				},
				"nodeGraph": map[string]any{"enabled": true},
			},
		},
		{
			Name: "Vigil profiles", Type: typePyroscope, UID: uidPyroscope, Access: "proxy", URL: url,
			JSONData: map[string]any{"minStep": "15s"},
		},
		{
			// The plugin reads its URL from jsonData, not from url.
			Name: "Vigil dumps", Type: typeSentry, UID: uidSentry, Access: "proxy", URL: url,
			JSONData:       map[string]any{"url": url, "orgSlug": sentryOrg},
			SecureJSONData: map[string]string{"authToken": "${" + tokenVar + "}"},
		},
	}}
}

// dashboardsFile is a Grafana dashboard provider provisioning file.
type dashboardsFile struct {
	APIVersion int        `yaml:"apiVersion"`
	Providers  []provider `yaml:"providers"`
}

type provider struct {
	Name                  string            `yaml:"name"`
	Folder                string            `yaml:"folder"`
	Type                  string            `yaml:"type"`
	DisableDeletion       bool              `yaml:"disableDeletion"`
	AllowUIUpdates        bool              `yaml:"allowUiUpdates"`
	UpdateIntervalSeconds int               `yaml:"updateIntervalSeconds"`
	Options               map[string]string `yaml:"options"`
}

// dashboardsPath is where the provider reads the dashboards' JSON: mount
// deploy/grafana/dashboards there.
const dashboardsPath = "/etc/grafana/dashboards/vigil"

func dashboardProviders() dashboardsFile {
	return dashboardsFile{APIVersion: 1, Providers: []provider{{
		Name: "vigil", Folder: "Vigil", Type: "file", DisableDeletion: true,
		UpdateIntervalSeconds: 60, Options: map[string]string{"path": dashboardsPath},
	}}}
}

// marshalYAML encodes v with the generated-file header.
func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header("#"))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot encode provisioning: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot encode provisioning: %w", err)
	}
	return buf.Bytes(), nil
}

func header(comment string) string {
	return comment + " Generated by `go run ./deploy/grafana/gen`; edit the generator, not this file.\n"
}
