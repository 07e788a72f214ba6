package golden

import (
	"strings"
	"testing"
)

func TestParseConfigErrorsNameTheField(t *testing.T) {
	f := func(conf, want string) {
		t.Helper()
		_, err := ParseConfig([]byte(conf))
		if err == nil {
			t.Errorf("ParseConfig(%q): no error; want one containing %q", conf, want)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%q) = %q; want it to contain %q", conf, err, want)
		}
	}
	f("labels: {service: 'a b'}", `labels.service: "a b" is not a valid label name`)
	f("labels: {service: grade}", `labels: service, grade and dc must be three different labels`)
	f("rate_window: 5 minutes", `cannot parse conventions`)
	f("rate_window: -5m", `cannot parse conventions`)
	f("quantiles: [0.5, 1.5]", `quantiles[1]: 1.5 is not between 0 and 1`)
	f("colour: blue", `field colour not found`)
	f("conventions: [{preset: vigil-http}, {preset: nope}]", `conventions[1].preset: unknown preset "nope"; known: exporter, otel-http,`)
	f("conventions: [{preset: vigil-http}, {preset: vigil-http}]", `conventions[1].name: "vigil_http" is also the name of conventions[0]`)
	f("conventions: [{requests: {counter: x_total}, errors: 'code=\"500\"'}]", `conventions[0].name: missing`)
	f("conventions: [{name: 'a-b', requests: {counter: x_total}, errors: 'c=\"5\"'}]", `conventions[0].name: "a-b" may hold only letters, digits and _`)
	f("conventions: [{name: process, requests: {counter: x_total}, errors: 'c=\"5\"'}]", `conventions[0].name: "process" is reserved`)
	f("conventions: [{name: a, signal: '1x', requests: {counter: x_total}, errors: 'c=\"5\"'}]", `conventions[0].signal: "1x" is not a valid metric name`)
	f("conventions: [{name: a, errors: 'c=\"5\"'}]", `conventions[0].requests: set counter or histogram`)
	f("conventions: [{name: a, requests: {counter: x_total, histogram: y}, errors: 'c=\"5\"'}]", `conventions[0].requests: set counter or histogram, not both`)
	f("conventions: [{name: a, requests: {counter: 'x-total'}, errors: 'c=\"5\"'}]", `conventions[0].requests.counter: "x-total" is not a valid metric name`)
	f("conventions: [{name: a, requests: {counter: x_total}}]", `conventions[0].errors: missing`)
	f("conventions: [{name: a, requests: {counter: x_total}, errors: 'code=5..'}]", `conventions[0].errors: "code=5.." is not a list of label matchers`)
	f("conventions: [{name: a, requests: {counter: x_total}, errors: 'c=\"5\"', selector: 'env'}]", `conventions[0].selector: "env" is not a list of label matchers`)
	f("conventions: [{name: a, requests: {counter: x_total}, errors: 'c=\"5\"', labels: {dc: 'x.y'}}]", `conventions[0].labels.dc: "x.y" is not a valid label name`)
	f("conventions: [{name: a, requests: {counter: x_total}, errors: 'c=\"5\"', duration: 'a b'}]", `conventions[0].duration: "a b" is not a valid metric name`)
	f("conventions: [{name: a, requests: {counter: x_total}, errors: 'c=\"5\"', capacity: cap}]", `conventions[0].capacity: needs inflight too`)
	f("process: {preset: java}", `process.preset: unknown preset "java"; known: target, vigil`)
	f("process: {selector: 'x'}", `process.selector: "x" is not a list of label matchers`)
	f("process: {}", `process: name at least one of cpu, memory, heap`)
	f("process: {heap: h, cores: go_threads}", `process.cores: needs cpu too`)
	f("process: {heap: h, memory_limit: lim}", `process.memory_limit: needs memory too`)
	f("process: {cpu: cpu_total, join: {on: [job]}}", `process.join.metric: missing`)
	f("process: {cpu: cpu_total, join: {metric: m, on: ['a b']}}", `process.join.on[0]: "a b" is not a valid label name`)
	f("slo: {objectives: {'1': 100}}", `slo.objectives["1"]: 100 is not a percentage between 0 and 100`)
	f("slo: {objectives: {'1': 0}}", `slo.objectives["1"]: 0 is not a percentage`)
	f("slo: {objectives: {'': 99}}", `slo.objectives: a grade is empty`)
	f("slo: {alerts: [{long_window: 1h, short_window: 5m, factor: 2}]}", `slo.alerts[0].severity: missing`)
	f("slo: {alerts: [{severity: page, short_window: 5m, factor: 2}]}", `slo.alerts[0].long_window: missing`)
	f("slo: {alerts: [{severity: page, long_window: 1h, factor: 2}]}", `slo.alerts[0].short_window: missing`)
	f("slo: {alerts: [{severity: page, long_window: 1h, short_window: 1h, factor: 2}]}", `slo.alerts[0].short_window: 1h is not shorter than long_window 1h`)
	f("slo: {alerts: [{severity: page, long_window: 1h, short_window: 5m}]}", `slo.alerts[0].factor: 0 is not a positive burn rate`)
}

func TestParseConfigFillsPresetsAndDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`
conventions:
  - preset: otel-http
    errors: 'http_response_status_code=~"5..|429"'
    capacity: http_server_max_requests
`))
	if err != nil {
		t.Fatal(err)
	}
	cv := c.Conventions[0]
	f := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q; want %q", what, got, want)
		}
	}
	f("name", cv.Name, "otel_http")
	f("signal", cv.Signal, "http_server")
	f("labels.service", cv.Labels.Service, "job")
	f("requests.histogram", cv.Requests.Histogram, "http_server_request_duration_seconds")
	f("errors (overridden)", cv.Errors, `http_response_status_code=~"5..|429"`)
	f("capacity (added)", cv.Capacity, "http_server_max_requests")
	f("rate_window", c.RateWindow.String(), "5m")
	f("default_grade", c.DefaultGrade, "4")
	f("labels", c.Labels.Service+","+c.Labels.Grade+","+c.Labels.DC, "service,grade,dc")
	f("process.cpu", c.Process.CPU, "process_cpu_seconds_total")
	if got := c.SLO.grades(); strings.Join(got, ",") != "1,2,3,4" {
		t.Errorf("grades = %v; want 1,2,3,4", got)
	}
	if c.SLO.Objectives["1"] <= c.SLO.Objectives["4"] {
		t.Errorf("objectives = %v; want grade 1 tighter than grade 4", c.SLO.Objectives)
	}

	d := DefaultConfig()
	var names []string
	for _, cv := range d.Conventions {
		names = append(names, cv.Name)
	}
	if got, want := strings.Join(names, ","), "vigil_http,vigil_http_client,vigil_grpc,vigil_grpc_client,vigil_spans"; got != want {
		t.Errorf("default conventions = %s; want %s", got, want)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("conventions: [{preset: vigil-http}]"))
	f.Add([]byte("labels: {service: app}\nslo: {objectives: {'1': 99.9}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// Whatever parses must generate rule files Prometheus accepts.
		for _, file := range Generate(c) {
			if _, err := file.Marshal(); err != nil {
				t.Fatalf("config %q parses but generates an invalid file: %v", b, err)
			}
		}
	})
}
