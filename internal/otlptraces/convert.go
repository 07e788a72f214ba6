package otlptraces

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/model"
)

// ToTraces builds OTLP traces from spans, one ResourceSpans (with one
// ScopeSpans) per distinct resource: service, host, env, grade and process
// attributes. Resources and spans keep the order of their first appearance.
func ToTraces(spans []model.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	byRes := map[string]ptrace.SpanSlice{}
	var key strings.Builder
	for i := range spans {
		s := &spans[i]
		key.Reset()
		for _, f := range [...]string{s.Service, s.Host, s.Env} {
			key.WriteString(strconv.Quote(f))
		}
		key.WriteString(strconv.Itoa(s.Grade))
		appendAttrsKey(&key, s.Process)
		ss, ok := byRes[key.String()]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			putResource(rs.Resource().Attributes(), s)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			byRes[key.String()] = ss
		}
		toSpan(ss.AppendEmpty(), s)
	}
	return td
}

func putResource(m pcommon.Map, s *model.Span) {
	m.EnsureCapacity(len(s.Process) + 4)
	if s.Service != "" {
		m.PutStr(model.AttrServiceName, s.Service)
	}
	if s.Host != "" {
		m.PutStr(model.AttrHostName, s.Host)
	}
	if s.Env != "" {
		m.PutStr(model.AttrEnv, s.Env)
	}
	if s.Grade != 0 {
		m.PutInt(model.AttrGrade, int64(s.Grade))
	}
	putAttrs(m, s.Process)
}

func toSpan(d ptrace.Span, s *model.Span) {
	d.SetTraceID(pcommon.TraceID(s.TraceID))
	d.SetSpanID(pcommon.SpanID(s.SpanID))
	d.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
	d.SetName(s.Name)
	d.SetKind(ptrace.SpanKind(s.Kind))
	d.SetStartTimestamp(pcommon.Timestamp(s.StartTime))
	d.SetEndTimestamp(pcommon.Timestamp(s.StartTime + s.Duration))
	d.SetFlags(s.Flags)
	d.Status().SetCode(ptrace.StatusCode(s.StatusCode))
	d.Status().SetMessage(s.StatusMessage)

	attrs := d.Attributes()
	putAttrs(attrs, s.Attributes)
	if len(s.Warnings) > 0 {
		ws := attrs.PutEmptySlice(AttrWarnings)
		ws.EnsureCapacity(len(s.Warnings))
		for _, w := range s.Warnings {
			ws.AppendEmpty().SetStr(w)
		}
	}

	if len(s.Events) > 0 {
		evs := d.Events()
		evs.EnsureCapacity(len(s.Events))
		for _, e := range s.Events {
			ev := evs.AppendEmpty()
			ev.SetTimestamp(pcommon.Timestamp(e.Time))
			ev.SetName(e.Name)
			putAttrs(ev.Attributes(), e.Attributes)
		}
	}

	parentSeen := false
	for _, r := range s.References {
		if !parentSeen && isParent(s, r) {
			parentSeen = true // carried by ParentSpanID
			continue
		}
		l := d.Links().AppendEmpty()
		l.SetTraceID(pcommon.TraceID(r.TraceID))
		l.SetSpanID(pcommon.SpanID(r.SpanID))
		if r.Type == model.RefChildOf {
			l.Attributes().PutStr(AttrRefType, RefTypeChildOf)
		}
	}
}

func isParent(s *model.Span, r model.SpanRef) bool {
	return r.Type == model.RefChildOf && !s.ParentSpanID.IsZero() &&
		r.SpanID == s.ParentSpanID && r.TraceID == s.TraceID
}

// FromTraces appends the spans of td to dst. Resource attributes other than
// service, host, env and grade become process attributes; a non-empty
// instrumentation scope becomes otel.scope.name/version span attributes.
func FromTraces(dst []model.Span, td ptrace.Traces) []model.Span {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		var base model.Span
		rs.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			switch k {
			case model.AttrServiceName:
				base.Service = v.AsString()
			case model.AttrHostName:
				base.Host = v.AsString()
			case model.AttrEnv, model.AttrEnvLegacy:
				base.Env = v.AsString()
			case model.AttrGrade:
				base.Grade = parseGrade(v)
			default:
				base.Process = append(base.Process, typedAttr(k, v))
			}
			return true
		})
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				dst = append(dst, base)
				s := &dst[len(dst)-1]
				if base.Process != nil {
					// Spans must not share the backing array.
					s.Process = append([]model.TypedAttr(nil), base.Process...)
				}
				fromSpan(s, spans.At(k), scope)
			}
		}
	}
	return dst
}

func fromSpan(s *model.Span, d ptrace.Span, scope pcommon.InstrumentationScope) {
	s.TraceID = model.TraceID(d.TraceID())
	s.SpanID = model.SpanID(d.SpanID())
	s.ParentSpanID = model.SpanID(d.ParentSpanID())
	s.Name = d.Name()
	s.Kind = model.SpanKind(d.Kind())
	s.StartTime = int64(d.StartTimestamp())
	if end := int64(d.EndTimestamp()); end >= s.StartTime {
		s.Duration = end - s.StartTime
	} else {
		s.Warnings = append(s.Warnings, "end time before start time; duration set to 0")
	}
	s.Flags = d.Flags()
	s.StatusCode = uint8(d.Status().Code())
	s.StatusMessage = d.Status().Message()

	attrs := d.Attributes()
	if n := attrs.Len(); n > 0 {
		s.Attributes = make([]model.TypedAttr, 0, n+2)
	}
	if scope.Name() != "" {
		s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrScopeName, Str: scope.Name()})
		if scope.Version() != "" {
			s.Attributes = append(s.Attributes, model.TypedAttr{Key: AttrScopeVersion, Str: scope.Version()})
		}
	}
	for k, v := range attrs.All() {
		if k == AttrWarnings {
			s.Warnings = appendWarnings(s.Warnings, v)
			continue
		}
		s.Attributes = append(s.Attributes, typedAttr(k, v))
	}
	if len(s.Attributes) == 0 {
		s.Attributes = nil
	}

	if evs := d.Events(); evs.Len() > 0 {
		s.Events = make([]model.SpanEvent, evs.Len())
		for i := range s.Events {
			ev := evs.At(i)
			e := &s.Events[i]
			e.Time = int64(ev.Timestamp())
			e.Name = ev.Name()
			e.Attributes = appendAttrs(nil, ev.Attributes(), nil)
		}
	}

	links := d.Links()
	if n := links.Len(); n > 0 || !s.ParentSpanID.IsZero() {
		s.References = make([]model.SpanRef, 0, n+1)
	}
	if !s.ParentSpanID.IsZero() {
		s.References = append(s.References, model.SpanRef{Type: model.RefChildOf, TraceID: s.TraceID, SpanID: s.ParentSpanID})
	}
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		r := model.SpanRef{Type: model.RefFollowsFrom, TraceID: model.TraceID(l.TraceID()), SpanID: model.SpanID(l.SpanID())}
		if v, ok := l.Attributes().Get(AttrRefType); ok && v.AsString() == RefTypeChildOf {
			r.Type = model.RefChildOf
		}
		s.References = append(s.References, r)
	}
}

func appendWarnings(dst []string, v pcommon.Value) []string {
	if v.Type() != pcommon.ValueTypeSlice {
		return append(dst, v.AsString())
	}
	sl := v.Slice()
	for i := 0; i < sl.Len(); i++ {
		dst = append(dst, sl.At(i).AsString())
	}
	return dst
}
