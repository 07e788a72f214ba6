package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/vigilhq/vigil/internal/querylimit"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/internal/model"
	"github.com/vigilhq/vigil/internal/storage"
)

// Jaeger's API v3 over HTTP (its gRPC gateway): traces as OTLP JSON inside
// {"result": …}, errors as {"error": {"httpCode": …, "message": …}}.

// RegisterV3 adds the /api/v3 endpoints to mux.
func (a *API) RegisterV3(mux *http.ServeMux) {
	route := func(path, name string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc("GET "+path, a.instrumentV3(name, h))
	}
	route("/api/v3/traces", "v3_find_traces", a.v3FindTraces)
	route("/api/v3/traces/{traceID}", "v3_trace", a.v3GetTrace)
	route("/api/v3/services", "v3_services", a.v3Services)
	route("/api/v3/operations", "v3_operations", a.v3Operations)
}

func writeV3(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body) // the client went; nothing to tell it
}

func (a *API) instrumentV3(name string, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		code := http.StatusOK
		err := r.ParseForm()
		if err != nil {
			err = &paramError{"cannot parse request parameters: " + err.Error()}
		} else {
			err = h(w, r)
		}
		if err != nil {
			if code = statusOf(err); code == http.StatusInternalServerError {
				a.opts.Logger.Warn("jaeger v3 query failed", "endpoint", name, "err", err)
			}
			type apiErr struct {
				HTTPCode int    `json:"httpCode"`
				Message  string `json:"message"`
			}
			body, _ := json.Marshal(map[string]apiErr{"error": {code, err.Error()}})
			writeV3(w, code, body)
		}
		a.metrics.Observe(name, code, t0)
	}
}

func writeTraces(w http.ResponseWriter, traces [][]model.Span) error {
	var m ptrace.JSONMarshaler
	b, err := m.MarshalTraces(ToOTLP(traces...))
	if err != nil {
		return err
	}
	body := make([]byte, 0, len(b)+12)
	body = append(append(append(body, `{"result":`...), b...), '}')
	writeV3(w, http.StatusOK, body)
	return nil
}

func (a *API) v3GetTrace(w http.ResponseWriter, r *http.Request) error {
	raw := r.PathValue("traceID")
	id, err := ParseTraceID(raw)
	if err != nil {
		return badParam("trace_id", "%v", err)
	}
	spans, err := a.spans.GetTrace(r.Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) || err == nil && len(spans) == 0 {
		return &notFoundError{raw}
	}
	if err != nil {
		return err
	}
	return writeTraces(w, [][]model.Span{spans})
}

// v3FindTraces reads query.service_name, query.operation_name,
// query.start_time_min/max (RFC 3339, required), query.duration_min/max and
// query.num_traces (or query.search_depth).
func (a *API) v3FindTraces(w http.ResponseWriter, r *http.Request) error {
	f := r.Form
	q := storage.TraceQuery{Service: f.Get("query.service_name"), Operation: f.Get("query.operation_name"), Limit: a.opts.DefaultLimit}
	if q.Service == "" {
		return badParam("query.service_name", "is required")
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"query.start_time_min", &q.StartMin}, {"query.start_time_max", &q.StartMax}} {
		v := f.Get(p.name)
		if v == "" {
			return badParam(p.name, "is required")
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badParam(p.name, "cannot parse %q as RFC 3339", v)
		}
		*p.dst = t.UnixNano()
	}
	if err := querylimit.CheckRange(r.Context(), time.Unix(0, q.StartMin), time.Unix(0, q.StartMax)); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"query.duration_min", &q.DurationMin}, {"query.duration_max", &q.DurationMax}} {
		if v := f.Get(p.name); v != "" {
			d, err := parseDuration(p.name, v)
			if err != nil {
				return err
			}
			*p.dst = int64(d)
		}
	}
	for _, name := range []string{"query.num_traces", "query.search_depth"} {
		if v := f.Get(name); v != "" {
			n, err := parseInt(name, v, "number of traces")
			if err != nil {
				return err
			}
			if n > 0 {
				q.Limit = int(min(n, int64(a.opts.MaxLimit)))
			}
		}
	}
	traces, err := a.spans.FindTraces(r.Context(), q)
	if err != nil {
		return err
	}
	return writeTraces(w, traces)
}

func (a *API) v3Services(w http.ResponseWriter, r *http.Request) error {
	svcs, err := a.spans.Services(r.Context())
	if err != nil {
		return err
	}
	if svcs == nil {
		svcs = []string{}
	}
	body, _ := json.Marshal(map[string][]string{"services": svcs})
	writeV3(w, http.StatusOK, body)
	return nil
}

func (a *API) v3Operations(w http.ResponseWriter, r *http.Request) error {
	service := r.Form.Get("service")
	if service == "" {
		return badParam("service", "is required")
	}
	ops, err := a.spans.Operations(r.Context(), service, r.Form.Get("span_kind"))
	if err != nil {
		return err
	}
	type op struct {
		Name     string `json:"name"`
		SpanKind string `json:"spanKind"`
	}
	out := make([]op, len(ops))
	for i, o := range ops {
		out[i] = op{o.Name, o.SpanKind}
	}
	body, _ := json.Marshal(map[string][]op{"operations": out})
	writeV3(w, http.StatusOK, body)
	return nil
}

func putAttrs(m pcommon.Map, attrs []model.TypedAttr) {
	for _, a := range attrs {
		switch a.Type {
		case model.AttrBool:
			m.PutBool(a.Key, a.Int != 0)
		case model.AttrInt64:
			m.PutInt(a.Key, a.Int)
		case model.AttrFloat64:
			m.PutDouble(a.Key, a.Float)
		case model.AttrBinary:
			m.PutEmptyBytes(a.Key).FromRaw([]byte(a.Str))
		default:
			m.PutStr(a.Key, a.Str)
		}
	}
}

// ToOTLP converts traces to OTLP: one resource per process of a trace.
func ToOTLP(traces ...[]model.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, spans := range traces {
		scopes := map[string]ptrace.SpanSlice{}
		for i := range spans {
			s := &spans[i]
			key := processKey(s)
			ss, ok := scopes[key]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				res := rs.Resource().Attributes()
				res.PutStr("service.name", s.Service)
				putAttrs(res, s.Process)
				if s.Host != "" {
					res.PutStr("host.name", s.Host)
				}
				if s.Env != "" {
					res.PutStr("deployment.environment", s.Env)
				}
				if s.Grade != 0 {
					res.PutInt("vigil.grade", int64(s.Grade))
				}
				ss = rs.ScopeSpans().AppendEmpty().Spans()
				scopes[key] = ss
			}
			sp := ss.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID(s.TraceID))
			sp.SetSpanID(pcommon.SpanID(s.SpanID))
			sp.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
			sp.SetName(s.Name)
			sp.SetKind(ptrace.SpanKind(s.Kind))
			sp.SetFlags(s.Flags)
			sp.SetStartTimestamp(pcommon.Timestamp(s.StartTime))
			sp.SetEndTimestamp(pcommon.Timestamp(s.StartTime + s.Duration))
			putAttrs(sp.Attributes(), s.Attributes)
			for _, e := range s.Events {
				ev := sp.Events().AppendEmpty()
				ev.SetTimestamp(pcommon.Timestamp(e.Time))
				ev.SetName(e.Name)
				putAttrs(ev.Attributes(), e.Attributes)
			}
			for _, ref := range s.References {
				if ref.Type == model.RefChildOf && ref.SpanID == s.ParentSpanID {
					continue
				}
				l := sp.Links().AppendEmpty()
				l.SetTraceID(pcommon.TraceID(ref.TraceID))
				l.SetSpanID(pcommon.SpanID(ref.SpanID))
			}
			sp.Status().SetCode(ptrace.StatusCode(s.StatusCode))
			sp.Status().SetMessage(s.StatusMessage)
		}
	}
	return td
}
