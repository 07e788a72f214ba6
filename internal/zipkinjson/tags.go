package zipkinjson

import (
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/vigilhq/vigil/internal/model"
)

// resourcePrefixes are the tag prefixes of OpenTelemetry resource semantic
// conventions; tags with them describe the process, not the span, and become
// process attributes (the OpenTelemetry receiver moves them to the
// resource).
var resourcePrefixes = [...]string{
	"service.", "telemetry.sdk.", "host.", "os.", "process.", "container.",
	"k8s.", "cloud.", "deployment.", "faas.", "device.",
}

func isResourceTag(k string) bool {
	for _, p := range resourcePrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// tags maps the tags object: string values become string attributes; the
// error, otel.status_* and span.kind tags and resource tags are mapped as
// documented in docs/format/spans.md.
func tags(s *model.Span, v *fastjson.Value) *SpanError {
	if !present(v) {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		return &SpanError{Field: "tags", Msg: "want an object of string values, got " + v.Type().String()}
	}
	var e *SpanError
	var errorTag, statusCode, statusDesc, kind *string
	o.Visit(func(kb []byte, tv *fastjson.Value) {
		if e != nil || tv.Type() == fastjson.TypeNull {
			return
		}
		k := string(kb)
		var val string
		switch tv.Type() {
		case fastjson.TypeString:
			val = string(tv.GetStringBytes())
		case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
			// Not Zipkin, but some tracers send them: kept as text.
			val = tv.String()
		default:
			e = &SpanError{Field: "tags." + k, Msg: "want a string, got " + tv.Type().String()}
			return
		}
		switch {
		case k == TagError:
			errorTag = &val
		case k == TagStatusCode:
			statusCode = &val
		case k == TagStatusDesc:
			statusDesc = &val
		case k == TagSpanKind && s.Kind == model.SpanKindUnspecified:
			kind = &val
		case k == model.AttrHostName:
			s.Host = val
		case k == model.AttrEnvLegacy || k == model.AttrEnv:
			s.Env = val
		case k == model.AttrGrade:
			g, err := strconv.Atoi(val)
			if err != nil || g < 1 || g > 4 {
				e = &SpanError{Field: "tags." + k, Msg: strconv.Quote(val) + ": want an integer from 1 to 4"}
				return
			}
			s.Grade = g
		case k == model.AttrServiceName:
			// localEndpoint.serviceName wins; the tag names a service
			// only when the endpoint does not.
			if s.Service == "" {
				s.Service = val
			}
		case isResourceTag(k):
			s.Process = append(s.Process, model.TypedAttr{Key: k, Str: val})
		default:
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: k, Str: val})
		}
	})
	if e != nil {
		return e
	}
	if kind != nil {
		if *kind == "internal" {
			s.Kind = model.SpanKindInternal
		} else {
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: TagSpanKind, Str: *kind})
		}
	}
	if statusCode != nil {
		switch *statusCode {
		case "OK", "STATUS_CODE_OK":
			s.StatusCode = 1
		case "ERROR", "STATUS_CODE_ERROR":
			s.StatusCode = 2
		case "UNSET", "STATUS_CODE_UNSET":
		default:
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: TagStatusCode, Str: *statusCode})
		}
		if statusDesc != nil {
			s.StatusMessage = *statusDesc
		}
	} else if statusDesc != nil {
		s.Attributes = append(s.Attributes, model.TypedAttr{Key: TagStatusDesc, Str: *statusDesc})
	}
	if errorTag != nil {
		switch *errorTag {
		case "false":
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: TagError, Str: *errorTag})
		default:
			// Zipkin: the presence of the error tag marks a failed span;
			// Brave and zipkin-go put the message in its value.
			s.StatusCode = 2
			if *errorTag != "true" && *errorTag != "" && s.StatusMessage == "" {
				s.StatusMessage = *errorTag
			}
		}
	}
	return nil
}
