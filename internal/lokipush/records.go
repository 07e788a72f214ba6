package lokipush

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/otlplogs"
)

// Source is the model.LogRecord Source of pushed lines.
const Source = "loki"

// DefaultService is the service of streams without a label naming one,
// Loki's unknown_service.
const DefaultService = "unknown_service"

// ServiceLabels are the labels a stream's service is taken from, the first
// present winning: Loki's service_name, then the labels Loki 3 derives
// service_name from by default (limits_config.discover_service_name).
var ServiceLabels = []string{
	"service_name",
	"service", "app", "application", "app_name", "name", "app_kubernetes_io_name",
	"container", "container_name", "k8s_container_name", "component", "workload",
	"job", "k8s_job_name",
}

// Labels that fill a record's Level, Env and Host, the first present
// winning. deployment_environment(_name) and host_name are how OpenTelemetry
// resource attributes arrive through Alloy and the OpenTelemetry
// Collector's Loki exporter.
var (
	LevelLabels = []string{"level", "detected_level"}
	EnvLabels   = []string{"env", "environment", "deployment_environment_name", "deployment_environment"}
	HostLabels  = []string{"host", "hostname", "host_name"}
)

// Structured metadata lifted into a record's trace context.
const (
	metadataTraceID = "trace_id"
	metadataSpanID  = "span_id"
)

// template holds what a stream's labels give each of its records.
type template struct {
	service string
	level   string
	env     string
	host    string
	grade   int
	attrs   []model.Attr // labels no record field took
}

// fill maps labels ls onto t. service_name, and the label the service,
// level, env or host was taken from, are consumed (they are stream labels
// of the record); every other label becomes an attribute, including one
// the service was derived from under another name (job, app, …), so
// `| job="…"` still matches.
func (t *template) fill(ls []model.Label) {
	taken := func(names []string) (string, string) {
		for _, n := range names {
			for _, l := range ls {
				if l.Name == n {
					return n, valid(l.Value)
				}
			}
		}
		return "", ""
	}
	svcFrom, svc := taken(ServiceLabels)
	lvlFrom, lvl := taken(LevelLabels)
	envFrom, env := taken(EnvLabels)
	hostFrom, host := taken(HostLabels)
	t.service, t.level, t.env, t.host = svc, otlplogs.NormalizeLevel(lvl), env, host
	if t.service == "" {
		t.service = DefaultService
	}
	t.grade = 0
	if g, err := strconv.Atoi(model.Labels(ls).Get(model.LabelGrade)); err == nil && g >= 1 && g <= 4 {
		t.grade = g
	}
	t.attrs = t.attrs[:0]
	for _, l := range ls {
		switch l.Name {
		case "service_name", lvlFrom, envFrom, hostFrom:
			continue
		case model.LabelService:
			if svcFrom == model.LabelService {
				continue
			}
		case model.LabelGrade:
			if t.grade > 0 {
				continue
			}
		}
		t.attrs = append(t.attrs, model.Attr{Key: valid(l.Name), Value: valid(l.Value)})
	}
}

// appendRecords appends a record per valid entry of s; entries over
// MaxLineBytes are counted in *invalid and described in errs.
func (d *Decoder) appendRecords(dst []model.LogRecord, t *template, s *stream, now int64, invalid *int, errs *groupedErrors) []model.LogRecord {
	n := 0
	for i := range s.entries {
		n += len(t.attrs) + len(s.entries[i].metadata)
	}
	attrs := make([]model.Attr, 0, n) // one array for the stream's records
	for i := range s.entries {
		e := &s.entries[i]
		if d.MaxLineBytes > 0 && len(e.line) > d.MaxLineBytes {
			*invalid++
			errs.add(fmt.Sprintf("max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes", d.MaxLineBytes, s.labels, len(e.line)), 1)
			continue
		}
		r := model.LogRecord{
			Timestamp:         max(e.ts, 0),
			ObservedTimestamp: now,
			Service:           t.service,
			Level:             t.level,
			Env:               t.env,
			Host:              t.host,
			Grade:             t.grade,
			Source:            Source,
			Message:           valid(e.line),
		}
		start := len(attrs)
		attrs = append(attrs, t.attrs...)
		for _, m := range e.metadata {
			if m.Key == "" {
				continue
			}
			switch {
			case m.Key == metadataTraceID && r.TraceID == "" && isHexID(m.Value, 32, 16):
				r.TraceID = strings.ToLower(m.Value)
				continue
			case m.Key == metadataSpanID && r.SpanID == "" && isHexID(m.Value, 16):
				r.SpanID = strings.ToLower(m.Value)
				continue
			case r.Level == "" && (m.Key == "level" || m.Key == "detected_level"):
				r.Level = otlplogs.NormalizeLevel(valid(m.Value))
				continue
			}
			attrs = append(attrs, model.Attr{Key: valid(m.Key), Value: valid(m.Value)})
		}
		if len(attrs) > start {
			r.Attributes = attrs[start:len(attrs):len(attrs)]
		}
		dst = append(dst, r)
	}
	return dst
}

func isHexID(s string, lengths ...int) bool {
	for _, n := range lengths {
		if len(s) == n {
			_, err := hex.DecodeString(s)
			return err == nil
		}
	}
	return false
}

// valid returns s with invalid UTF-8 replaced by U+FFFD: Loki stores any
// bytes, Vigil's stores want text.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
